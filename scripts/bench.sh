#!/usr/bin/env bash
# Neo's benchmark matrix: every transport this node offers (as `neo doctor`
# reports it) against raw baselines and a peer broker, all in the same
# invocation, with results, a markdown table and SVG plots.
#
#   scripts/bench.sh [rtt|e2e|all] [--quick] [--publish]
#
#   rtt   RPC round trips at 64 B, 1 KB, 64 KB: Neo over tcp (loopback),
#         af-xdp, tcp and dpdk (veth between namespaces, as root) against
#         sockperf TCP/UDP ping-pong on the same paths (scripts/bench-rtt.sh);
#         rdma against ib_send_lat, on the host when it has RDMA and in the
#         soft-RoCE qemu guest (TCG-emulated CPU; scripts/bench-rdma.sh).
#   e2e   the broker, produce → consume, at fixed rates and at maximum
#         throughput, against NATS JetStream; Apache Iggy when it can be
#         built here (scripts/bench-e2e.sh).
#   all   both (the default).
#   --quick    tiny counts and durations: proves every row end to end in
#              about two minutes (CI runs it); no figure means anything.
#   --publish  then copy the run's table and plots into docs/
#              (scripts/bench-publish.sh; refuses a --quick run).
#
# Results: bench-results/<UTC timestamp>/ and bench-results/latest ->
# it: summary.json (one record per row: measured, or skipped/failed with
# the reason), raw/ (each run's raw output; Neo's and NATS's JSON carry the
# latency CDF of their HDR histogram), machine.json, doctor.json, table.md
# and *.svg (drawn by bench-report, benches/report). Exits non-zero when a
# row that should have run failed. Method: docs/benchmarks.md.
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=SCRIPTDIR/bench-lib.sh
. "$NEO_ROOT/scripts/bench-lib.sh"

suite=all quick=0 publish=0
for a in "$@"; do
    case "$a" in
        rtt|e2e|all) suite="$a" ;;
        --quick) quick=1 ;;
        --publish) publish=1 ;;
        *) echo "usage: scripts/bench.sh [rtt|e2e|all] [--quick] [--publish]" >&2; exit 2 ;;
    esac
done

# Sizes, counts and durations.
rtt_sizes="64 1024 65536" e2e_size=1024 e2e_rates="1000 10000" rdma_guest_rate=500
if [ "$quick" = 1 ]; then
    rtt_count=300 rtt_count_big=100 sockperf_seconds=1 e2e_seconds=0.5 e2e_warmup=0.2
    guest_rtt_count=100 guest_rtt_count_big=20 guest_ib_iters=100 guest_e2e_seconds=1
else
    rtt_count=20000 rtt_count_big=5000 sockperf_seconds=3 e2e_seconds=10 e2e_warmup=1
    guest_rtt_count=2000 guest_rtt_count_big=200 guest_ib_iters=2000 guest_e2e_seconds=5
fi

bench_start=$(date +%s) step=0 failures=0
ensure_apt "${NEO_BUILD_PKGS[@]}" "${NEO_TEST_PKGS[@]}"
ensure_rust
cd "$NEO_ROOT"
log "building neo (release, full features), neo-bench-nats and bench-report"
cargo build --release --features full --bin neo -q
cargo build --release -p neo-bench-nats -q
cargo build --release -p neo-benches --bin bench-report -q
neo="$NEO_ROOT/target/release/neo" report="$NEO_ROOT/target/release/bench-report"

ts="$(date -u +%Y%m%dT%H%M%SZ)"
out="$NEO_ROOT/bench-results/$ts"
mkdir -p "$out/raw"
: >"$out/records.jsonl"
base_port=$(( 20000 + $$ % 20000 ))

# What this node offers, per `neo doctor`.
"$neo" doctor --json >"$out/doctor.json" 2>/dev/null
"$neo" doctor >"$out/doctor.txt" 2>&1 || true
declare -A usable reason
while IFS=$'\t' read -r name ok why; do usable[$name]="$ok" reason[$name]="$why"; done < <("$report" usable "$out/doctor.json")
log "neo doctor: $(for t in "${!usable[@]}"; do printf '%s=%s ' "$t" "${usable[$t]}"; done)"

sockperf_version="$(sockperf --version 2>/dev/null | awk 'NR==1 {print $3}' | cut -d- -f1)"
nats_version="$(nats-server --version 2>/dev/null | awk '{print $2}')"
perftest_version="$(dpkg-query -W -f='${Version}' perftest 2>/dev/null || echo '?')"
machine_dpdk="$(pkg-config --modversion libdpdk 2>/dev/null || echo '?')"
machine_nic="none used (loopback only)" machine_xdp="not measured (no AF_XDP rows ran)" machine_rdma="not measured"

cleanup() {
    local p
    for p in $(jobs -p); do kill -TERM "$p" 2>/dev/null || true; done
    rm -rf "$out"/neo-data.* "$out"/nats-data.*
}
trap cleanup EXIT

# shellcheck source=SCRIPTDIR/bench-rtt.sh
. "$NEO_ROOT/scripts/bench-rtt.sh"
# shellcheck source=SCRIPTDIR/bench-e2e.sh
. "$NEO_ROOT/scripts/bench-e2e.sh"
# shellcheck source=SCRIPTDIR/bench-rdma.sh
. "$NEO_ROOT/scripts/bench-rdma.sh"
# Every row records its own failure: the suites run without errexit.
set +e
case "$suite" in
    rtt) suite_rtt; suite_rdma ;;
    e2e) suite_e2e ;;
    all) suite_rtt; suite_e2e; suite_rdma ;;
esac
cleanup
set -e

{
    echo "["
    sed '$!s/$/,/' "$out/records.jsonl"
    echo "]"
} >"$out/summary.json"
jobj cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" cores:="$(nproc)" \
    kernel="$(uname -srm)" os="$(. /etc/os-release && echo "$PRETTY_NAME")" \
    virtualization="$(systemd-detect-virt 2>/dev/null || echo unknown)" \
    memory="$(free -g | awk '/^Mem:/ {print $2 " GiB"}')" nic="$machine_nic" xdp_mode="$machine_xdp" \
    dpdk="DPDK $machine_dpdk (virtual devices only: net_af_packet on the veth, --no-huge)" rdma="$machine_rdma" \
    pinning="$pinning" sockperf="$sockperf_version" nats_server="$nats_version" perftest="$perftest_version" \
    mode="$([ "$quick" = 1 ] && echo "quick (--quick: tiny counts, plumbing only)" || echo full) suite $suite" \
    started="$ts" host="$(hostname)" \
    commit="$(git -C "$NEO_ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$NEO_ROOT" diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')" \
    >"$out/machine.json"
ln -sfn "$ts" "$NEO_ROOT/bench-results/latest"
log "report: table.md and plots"
echo
"$report" report "$out"
echo
rows=$(wc -l <"$out/records.jsonl")
skipped=$(grep -c '"skipped"' "$out/records.jsonl" || true)
log "$rows rows ($skipped skipped, $failures failed) in $(( $(date +%s) - bench_start ))s: $out (also bench-results/latest)"
if [ "$failures" -gt 0 ]; then
    warn "$failures row(s) failed: see 'Failed rows' in $out/table.md"
    exit 1
fi
if [ "$publish" = 1 ]; then
    "$NEO_ROOT/scripts/bench-publish.sh" "$out"
fi
