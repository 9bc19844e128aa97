#!/usr/bin/env bash
# AF_XDP end to end on real kernels: Neo RPC and the broker (produce and
# consume through it) over the af-xdp transport between two network
# namespaces, (1) over a direct veth pair and (2) through a bridge whose
# nftables rules drop 5% of Neo's UDP packets each way. Every RPC and every
# record must arrive in both. Needs root; removes every namespace it made, also on failure.
#
#   ci/af_xdp.sh [path/to/neo]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
neo="${1:-$here/../target/release/neo}"
. "$here/netns.sh"

require_root ci/af_xdp.sh "network namespaces, XDP, AF_XDP"

PORT=7400 CPORT=7401
run_case() {
    local name="$1" count="$2"
    local log; log="$(mktemp)"
    local data; data="$(mktemp -d)"
    in_b timeout 120 "$neo" serve --admin-listen 127.0.0.1:7402 --data-dir "$data" --transport af-xdp --interface "$NEO_IF_B" \
        --listen "$NEO_IP_B:$PORT" >"$log" 2>&1 &
    local srv=$!
    # Wait until the server has its socket (it logs the address).
    for _ in $(seq 100); do grep -q "neo serving" "$log" && break; sleep 0.05; done
    grep -q "neo serving" "$log" || { cat "$log"; echo "FAIL $name: server did not start" >&2; return 1; }
    local out
    if ! out="$(in_a timeout 90 "$neo" bench rtt --transport af-xdp --interface "$NEO_IF_A" \
        --local "$NEO_IP_A:$CPORT" --connect "$NEO_IP_B:$PORT" --count "$count" --warmup 100 --json 2>&1)"; then
        echo "$out"; cat "$log"; echo "FAIL $name: client failed" >&2; kill "$srv" 2>/dev/null; return 1
    fi
    # The broker over the same link: produce and consume through it.
    local e2e
    e2e="$(in_a timeout 90 "$neo" bench e2e --transport af-xdp --interface "$NEO_IF_A" --local "$NEO_IP_A:$((CPORT + 1))" \
        --connect "$NEO_IP_B:$PORT" --rate 2000 --duration 1 --warmup 0 --acks all --json 2>&1)" || true
    # The broker's /metrics (admin on the namespace's loopback): promtool,
    # the dashboard's packet-engine panels, and retransmits under loss.
    in_b curl -sf 127.0.0.1:7402/metrics >"$data/metrics.txt" || { cat "$log"; echo "FAIL $name: GET /metrics" >&2; return 1; }
    kill -TERM "$srv"; wait "$srv" || true
    promtool check metrics <"$data/metrics.txt" || { echo "FAIL $name: promtool check metrics" >&2; return 1; }
    python3 "$here/check_metrics.py" "$data/metrics.txt" "$here/../docs/grafana/neo-dashboard.json" --packet-engine \
        || { echo "FAIL $name: dashboard metrics" >&2; return 1; }
    local rtx; rtx="$(awk '$1=="neo_transport_retransmits_total{transport=\"af-xdp\"}" {print $2}' "$data/metrics.txt")"
    if [[ "$name" == *loss* ]] && ! awk -v r="${rtx:-0}" 'BEGIN{exit !(r>0)}'; then
        echo "FAIL $name: no retransmits in /metrics under loss (${rtx:-none})" >&2; return 1
    fi
    echo "PASS ${name/_rpc/_metrics}: /metrics clean under promtool, dashboard families present, retransmits=${rtx:-?}"
    local last; last="$(grep "^{\"bench\":\"rtt\"" <<<"$out" | tail -n 1)"
    grep -q "\"count\":$count" <<<"$last" || { echo "$out"; echo "FAIL $name: not every RPC completed" >&2; return 1; }
    local mode; mode="$(grep -o 'mode=[a-z]* XDP, [a-z -]*' "$log" | head -1)"
    echo "PASS $name: $count RPCs completed ($mode) $(grep -o '"p50_us":[0-9.]*' <<<"$last")"
    local elast sent recv
    elast="$(grep "^{\"bench\":\"e2e\"" <<<"$e2e" | tail -n 1)"
    sent="$(grep -o '"sent":[0-9]*' <<<"$elast" | cut -d: -f2)"
    recv="$(grep -o '"received":[0-9]*' <<<"$elast" | cut -d: -f2)"
    if [ -z "$sent" ] || [ "$sent" = 0 ] || [ "$sent" != "$recv" ]; then
        echo "$e2e"; cat "$log"; echo "FAIL ${name/_rpc/_broker}: produced ${sent:-?}, consumed ${recv:-?}" >&2; return 1
    fi
    echo "PASS ${name/_rpc/_broker}: $sent records produced (acks=all) and consumed through the broker over af-xdp"
    rm -rf "$log" "$data"
}

netns_up direct
probe="$(in_a "$neo" doctor --probe-af-xdp "$NEO_IF_A" 2>/dev/null | grep -o 'probe on [a-z0-9]*: [a-z]* XDP, [a-z -]*' || true)"
[ -n "$probe" ] || { echo "FAIL af_xdp_doctor_probe: neo doctor reported no AF_XDP mode" >&2; exit 1; }
echo "PASS af_xdp_doctor_probe: $probe"
run_case af_xdp_veth_rpc 5000
netns_down

netns_up bridged
netns_drop 5 "$PORT"
run_case af_xdp_veth_rpc_5pct_loss 3000
dropped="$(netns_drop_counters)"
echo "nftables dropped $dropped packets"
[ "$dropped" -gt 0 ] || { echo "FAIL: the loss rules dropped nothing" >&2; exit 1; }
netns_down
echo "af_xdp: 7 passed, 0 failed"
