#!/usr/bin/env bash
# The benchmark matrix end to end in about two minutes: runs
# `scripts/bench.sh all --quick` (tiny counts: plumbing, not figures) and
# checks its summary.json: every row this kind of node can run is there and
# measured, the rows it cannot run are there and skipped with a reason, none
# failed, and table.md and the plots were written. Needs root (namespaces).
#
#   ci/bench_quick.sh [path/to/neo]   (the argument is ignored: bench.sh builds what it needs)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
# shellcheck source=SCRIPTDIR/netns.sh
. "$here/netns.sh"
require_root ci/bench_quick.sh "network namespaces, veth, AF_XDP, DPDK vdevs"

start=$(date +%s)
"$root/scripts/bench.sh" all --quick >"${TMPDIR:-/tmp}/neo-bench-quick.log" 2>&1 ||
    { tail -40 "${TMPDIR:-/tmp}/neo-bench-quick.log"; echo "FAIL bench_quick_run: scripts/bench.sh all --quick failed" >&2; exit 1; }
dir="$(readlink -f "$root/bench-results/latest")"
summary="$dir/summary.json"
echo "PASS bench_quick_run: scripts/bench.sh all --quick in $(( $(date +%s) - start )) s -> $dir"

# Rows that must be measured here, rows that must be skipped with a reason,
# rows that may be either (they depend on the node: host RDMA, Iggy).
must=() skipped=() either=()
for s in 64 1024 65536; do
    for t in tcp sockperf-tcp sockperf-tcp-spin af-xdp tcp-veth dpdk sockperf-tcp-veth sockperf-tcp-veth-spin \
        rdma-tcg-guest ib_send_lat-tcg-guest; do must+=("rtt/$t/$s"); done
    either+=("rtt/rdma/$s" "rtt/ib_send_lat/$s")
done
for t in sockperf-udp sockperf-udp-spin sockperf-udp-veth sockperf-udp-veth-spin; do
    must+=("rtt/$t/64" "rtt/$t/1024"); skipped+=("rtt/$t/65536")
done
for t in tcp tcp-fsync-always nats-jetstream nats-jetstream-veth af-xdp dpdk rdma iggy; do
    for m in latency@1000 latency@10000 throughput; do
        case "$t" in rdma|iggy) either+=("e2e/$t/$m") ;; *) must+=("e2e/$t/$m") ;; esac
    done
done
must+=(e2e/rdma-tcg-guest/latency@500 e2e/rdma-tcg-guest/throughput)

bad=0
row() { grep -F "\"row\":\"$1\"," "$summary" || true; }
for r in "${must[@]}"; do
    line="$(row "$r")"
    if [ -z "$line" ] || grep -q '"skipped"\|"failed"' <<<"$line" || ! grep -q '"p50_us":[0-9]' <<<"$line"; then
        echo "FAIL bench_quick_rows: $r is not measured: ${line:-missing}" >&2; bad=1
    fi
done
for r in "${skipped[@]}"; do
    grep -q '"skipped":"[^"]' <<<"$(row "$r")" || { echo "FAIL bench_quick_rows: $r is not skipped with a reason" >&2; bad=1; }
done
for r in "${either[@]}"; do
    line="$(row "$r")"
    if [ -z "$line" ] || grep -q '"failed"' <<<"$line" ||
        ! { grep -q '"p50_us":[0-9]' <<<"$line" || grep -q '"skipped":"[^"]' <<<"$line"; }; then
        echo "FAIL bench_quick_rows: $r is neither measured nor skipped with a reason: ${line:-missing}" >&2; bad=1
    fi
done
if grep -q '"failed"' "$summary"; then
    grep '"failed"' "$summary" >&2; echo "FAIL bench_quick_rows: failed rows" >&2; bad=1
fi
[ "$bad" = 0 ] || exit 1
echo "PASS bench_quick_rows: ${#must[@]} rows measured, $(grep -c '"skipped"' "$summary") skipped with their reasons, none failed"

plots=("$dir"/*.svg)
if [ ! -s "$dir/table.md" ] || [ "${#plots[@]}" -lt 10 ] || ! grep -q 'Skipped rows' "$dir/table.md"; then
    echo "FAIL bench_quick_report: table.md or plots missing (${#plots[@]} SVGs)" >&2; exit 1
fi
for p in "${plots[@]}"; do
    grep -q '</svg>' "$p" || { echo "FAIL bench_quick_report: $p is not a whole SVG" >&2; exit 1; }
done
echo "PASS bench_quick_report: table.md and ${#plots[@]} SVG plots"
