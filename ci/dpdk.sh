#!/usr/bin/env bash
# DPDK end to end on virtual devices (no NIC, no hugepages: --no-huge):
#  1. net_af_packet on a veth in namespace neo-b, the peer (AF_XDP) on the
#     other end of the veth in neo-a;
#  2. net_tap: DPDK creates dtap0 in neo-b, the peer (AF_XDP) on its kernel side;
#  3. both ends DPDK net_af_packet;
#  4. `--transport auto` with a bad --dpdk-vdev falls back to TCP and says why.
# Every RPC must complete. Needs root; removes what it made, also on failure.
#
#   ci/dpdk.sh [path/to/neo]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
neo="${1:-$here/../target/release/neo}"
. "$here/netns.sh"

require_root ci/dpdk.sh "network namespaces, AF_PACKET, TAP"

passed=0
# start_server NS LOG ARGS...: runs `neo serve` in NS, waits until it serves.
start_server() {
    local ns="$1" log="$2"; shift 2
    ip netns exec "$ns" timeout 120 "$neo" serve --no-admin --data-dir "$data" "$@" >"$log" 2>&1 &
    srv=$!
    for _ in $(seq 200); do grep -q "neo serving" "$log" && return 0; sleep 0.05; done
    cat "$log"; echo "FAIL: server did not start" >&2; return 1
}

# check NAME COUNT OUTPUT: the bench's JSON says every RPC completed.
check() {
    local name="$1" count="$2" out="$3"
    grep -q "\"count\":$count" <<<"$(grep "^{\"bench\"" <<<"$out" | tail -n 1)" || { echo "$out"; echo "FAIL $name" >&2; return 1; }
    echo "PASS $name: $count RPCs $(grep -o '"p50_us":[0-9.]*' <<<"$out")"
    passed=$((passed + 1))
}

# check_e2e NAME OUTPUT: broker produce->consume finished with every record.
check_e2e() {
    local name="$1" out="$2" last
    last="$(grep "^{\"bench\":\"e2e\"" <<<"$out" | tail -n 1)"
    local sent recv
    sent="$(grep -o '"sent":[0-9]*' <<<"$last" | cut -d: -f2)"
    recv="$(grep -o '"received":[0-9]*' <<<"$last" | cut -d: -f2)"
    if [ -z "$sent" ] || [ "$sent" = 0 ] || [ "$sent" != "$recv" ]; then
        echo "$out"; echo "FAIL $name: produced ${sent:-?}, consumed ${recv:-?}" >&2; return 1
    fi
    echo "PASS $name: $sent records produced and consumed through the broker $(grep -o '"p50_us":[0-9.]*' <<<"$last")"
    passed=$((passed + 1))
}

log="$(mktemp)"
data="$(mktemp -d)"
netns_up direct
ip -n "$NEO_NS_B" addr flush dev "$NEO_IF_B"   # the engine owns this port, ARP included
start_server "$NEO_NS_B" "$log" --transport dpdk --dpdk-vdev "net_af_packet0,iface=$NEO_IF_B" --listen "$NEO_IP_B:7400"
out="$(in_a timeout 60 "$neo" bench rtt --transport af-xdp --interface "$NEO_IF_A" --local "$NEO_IP_A:7401" \
    --connect "$NEO_IP_B:7400" --count 3000 --warmup 100 --json 2>&1)"
check dpdk_af_packet_veth_rpc 3000 "$out"
ip -n "$NEO_NS_A" addr flush dev "$NEO_IF_A"
out="$(in_a timeout 60 "$neo" bench rtt --transport dpdk --dpdk-vdev "net_af_packet1,iface=$NEO_IF_A" \
    --local "$NEO_IP_A:7402" --connect "$NEO_IP_B:7400" --count 3000 --warmup 100 --json 2>&1)"
check dpdk_to_dpdk_af_packet_rpc 3000 "$out"
out="$(in_a timeout 60 "$neo" bench e2e --transport dpdk --dpdk-vdev "net_af_packet1,iface=$NEO_IF_A" \
    --local "$NEO_IP_A:7403" --connect "$NEO_IP_B:7400" --rate 2000 --duration 1 --warmup 0 --acks all --json 2>&1)" || true
check_e2e dpdk_broker_produce_consume "$out"
kill -TERM "$srv"; wait "$srv" || true
# The port reports its driver's extended statistics when it closes.
grep -q "DPDK port closing.*rx_good_packets=[1-9]" "$log" || { cat "$log"; echo "FAIL dpdk_xstats" >&2; exit 1; }
echo "PASS dpdk_xstats: $(grep -o 'rx_good_packets=[0-9]*' "$log") $(grep -o 'link_up=[a-z]*' "$log" | head -1)"
passed=$((passed + 1))

start_server "$NEO_NS_B" "$log" --transport dpdk --dpdk-vdev net_tap0,iface=dtap0 --listen 10.78.0.2:7400
ip -n "$NEO_NS_B" addr add 10.78.0.1/24 dev dtap0
ip -n "$NEO_NS_B" link set dtap0 up
out="$(in_b timeout 60 "$neo" bench rtt --transport af-xdp --interface dtap0 --local 10.78.0.1:7401 \
    --connect 10.78.0.2:7400 --count 3000 --warmup 100 --json 2>&1)"
check dpdk_tap_rpc 3000 "$out"
kill -TERM "$srv"; wait "$srv" || true

start_server "$NEO_NS_A" "$log" --transport auto --dpdk-vdev net_bogus0 --listen 127.0.0.1:7499 2>/dev/null || true
if grep -q "auto: dpdk unavailable" "$log" && grep -q 'transport="tcp"' "$log"; then
    echo "PASS dpdk_auto_fallback_to_tcp: $(grep -o 'Unable to parse device[^"]*' "$log" | head -1)"
    passed=$((passed + 1))
else
    cat "$log"; echo "FAIL dpdk_auto_fallback_to_tcp" >&2; exit 1
fi
kill -TERM "$srv"; wait "$srv" || true
netns_down
rm -rf "$log" "$data"
echo "dpdk: $passed passed, 0 failed"
