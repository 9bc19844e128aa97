#!/usr/bin/env bash
# Neo's benchmark matrix. Each suite runs Neo and its baselines in the same
# invocation, prints a table with ratios, and writes
# bench-results/<timestamp>/summary.json (a JSON list of records) plus
# bench-results/latest -> <timestamp>.
#
#   scripts/bench.sh [rtt|e2e|all] [--quick] [--size N] [--count N] [--seconds S]
#
# e2e: see scripts/bench-e2e.sh (the broker over every transport against
#   NATS JetStream, at a fixed rate and at maximum throughput).
#
# rtt, loopback: Neo RPC over TCP (`tcp`) against sockperf TCP ping-pong of the
#   same size: `sockperf-tcp` (sockperf's defaults: blocking client, epoll
#   server) and `sockperf-tcp-spin` (non-blocking sockets, client spinning).
# rtt, veth between two network namespaces (root only): Neo RPC over AF_XDP
#   (`af-xdp`), over TCP (`tcp-veth`) and over DPDK's net_af_packet virtual
#   device (`dpdk`), against kernel UDP ping-pong (`sockperf-udp-veth`,
#   defaults; `sockperf-udp-veth-spin`, spinning).
. "$(dirname "$0")/lib.sh"

suite="${1:-rtt}"; shift || true
size=64 count=20000 seconds=3 quick=0
while [ $# -gt 0 ]; do
    case "$1" in
        --size) size="$2"; shift 2 ;;
        --count) count="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --quick) quick=1; count=5000; seconds=2; shift ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
case "$suite" in rtt|e2e|all) ;; *) echo "unknown suite '$suite' (known: rtt, e2e, all)" >&2; exit 2 ;; esac

ensure_apt "${NEO_BUILD_PKGS[@]}" "${NEO_TEST_PKGS[@]}"
ensure_rust
cd "$NEO_ROOT"
log "building neo (release, full features)"
cargo build --release --features full --bin neo -q
neo="$NEO_ROOT/target/release/neo"

ts="$(date -u +%Y%m%dT%H%M%SZ)"
out="$NEO_ROOT/bench-results/$ts"
mkdir -p "$out"
records=()

# record TRANSPORT P50 P99 P999 MAX MEAN COUNT TOOL NOTE
record() {
    records+=("$(printf '{"bench":"rtt","transport":"%s","size":%s,"p50_us":%s,"p99_us":%s,"p999_us":%s,"max_us":%s,"mean_us":%s,"count":%s,"tool":"%s","note":"%s","host":"%s"}' \
        "$1" "$size" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$9" "$(hostname)")")
}

# json_num FIELD LINE: a number field out of a flat JSON object.
json_num() { sed -E "s/.*\"$1\":([0-9.eE+-]+).*/\1/" <<<"$2"; }

# neo_rtt NAME NOTE CLIENT_PREFIX... -- BENCH_ARGS...: runs `neo bench rtt --json`.
neo_rtt() {
    local name="$1" note="$2"; shift 2
    local pre=()
    while [ "$1" != -- ]; do pre+=("$1"); shift; done
    shift
    log "neo bench rtt ($name), $size B x $count"
    local line
    line="$("${pre[@]}" "$neo" bench rtt --size "$size" --count "$count" --json "$@" | tail -n 1)"
    echo "$line" >"$out/$name.json"
    record "$name" "$(json_num p50_us "$line")" "$(json_num p99_us "$line")" "$(json_num p999_us "$line")" \
        "$(json_num max_us "$line")" "$(json_num mean_us "$line")" "$(json_num count "$line")" neo "$note"
}

# sockperf_pp NAME NOTE "SERVER_PREFIX" "CLIENT_PREFIX" IP PORT "SERVER_ARGS" "CLIENT_ARGS"
sockperf_pp() {
    local name="$1" note="$2" spre="$3" cpre="$4" ip="$5" port="$6" sargs="$7" cargs="$8" log="$out/$1.txt"
    log "sockperf ping-pong ($name), $size B, ${seconds}s"
    # shellcheck disable=SC2086
    $spre timeout $((seconds + 20)) sockperf sr -i "$ip" -p "$port" $sargs >"$out/$name-server.txt" 2>&1 &
    local srv=$!
    sleep 0.5
    # shellcheck disable=SC2086
    $cpre timeout $((seconds + 15)) sockperf pp -i "$ip" -p "$port" -m "$size" -t "$seconds" --full-rtt $cargs >"$log" 2>&1 || true
    kill "$srv" 2>/dev/null || true
    wait "$srv" 2>/dev/null || true
    pct() { grep -E "percentile $1 " "$log" | awk -F= '{gsub(/ /,"",$2); print $2}'; }
    local p50 p99 p999 max mean obs
    p50="$(pct 50.000)"; p99="$(pct 99.000)"; p999="$(pct 99.900)"
    max="$(grep -E '<MAX> observation' "$log" | awk -F= '{gsub(/ /,"",$2); print $2}')"
    mean="$(grep -oE 'avg-rtt=[0-9.]+' "$log" | cut -d= -f2)"
    obs="$(grep -oE 'Total [0-9]+ observations' "$log" | awk '{print $2}')"
    if [ -z "$p50" ]; then
        warn "sockperf ($name) produced no percentiles; see $log"
        return 1
    fi
    record "$name" "$p50" "$p99" "$p999" "$max" "$mean" "$obs" sockperf "$note"
}

base_port=$(( 20000 + $$ % 20000 ))

suite_rtt() {
neo_rtt tcp "Neo RPC echo, loopback, client and server busy-poll" -- --transport tcp
sockperf_pp sockperf-tcp "sockperf 3.7 defaults: blocking client, epoll server" "" "" 127.0.0.1 "$base_port" "--tcp" "--tcp"
sockperf_pp sockperf-tcp-spin "sockperf 3.7, non-blocking sockets, client spins" "" "" 127.0.0.1 "$((base_port + 1))" \
    "--tcp --nonblocked" "--tcp --nonblocked --timeout 0"

if [ "$(id -u)" = 0 ]; then
    . "$NEO_ROOT/ci/netns.sh"
    netns_up direct
    A="ip netns exec $NEO_NS_A" B="ip netns exec $NEO_NS_B"
    srvlog="$out/neo-servers.txt"
    $B "$neo" serve --no-admin --data-dir "$out/neo-data-rtt1" --transport af-xdp --interface "$NEO_IF_B" --listen "$NEO_IP_B:7400" >>"$srvlog" 2>&1 &
    xsrv=$!
    $B "$neo" serve --no-admin --data-dir "$out/neo-data-rtt2" --transport tcp --listen "$NEO_IP_B:7402" >>"$srvlog" 2>&1 &
    tsrv=$!
    sleep 1
    neo_rtt af-xdp "Neo RPC echo over AF_XDP ($(grep -o 'native XDP, [a-z -]*\|generic XDP, [a-z -]*' "$srvlog" | head -1)), veth between namespaces" \
        $A -- --transport af-xdp --interface "$NEO_IF_A" --local "$NEO_IP_A:7401" --connect "$NEO_IP_B:7400"
    neo_rtt tcp-veth "Neo RPC echo over TCP, same veth pair" $A -- --transport tcp --connect "$NEO_IP_B:7402"
    kill -TERM "$xsrv" "$tsrv" 2>/dev/null || true
    wait "$xsrv" "$tsrv" 2>/dev/null || true
    sockperf_pp sockperf-udp-veth "kernel UDP, sockperf 3.7 defaults (blocking), same veth pair" "$B" "$A" "$NEO_IP_B" "$base_port" "" ""
    sockperf_pp sockperf-udp-veth-spin "kernel UDP, sockperf 3.7 non-blocking, client spins, same veth pair" "$B" "$A" \
        "$NEO_IP_B" "$((base_port + 1))" "--nonblocked" "--nonblocked --timeout 0"
    # DPDK owns both ends of the pair (the engine answers ARP): no kernel IPs.
    ip -n "$NEO_NS_A" addr flush dev "$NEO_IF_A"
    ip -n "$NEO_NS_B" addr flush dev "$NEO_IF_B"
    $B "$neo" serve --no-admin --data-dir "$out/neo-data-rtt3" --transport dpdk --dpdk-vdev "net_af_packet0,iface=$NEO_IF_B" --listen "$NEO_IP_B:7400" >>"$srvlog" 2>&1 &
    dsrv=$!
    sleep 2
    neo_rtt dpdk "Neo RPC echo over DPDK 22.11 net_af_packet VIRTUAL device on the same veth pair, both ends, --no-huge (not a NIC)" \
        $A -- --transport dpdk --dpdk-vdev "net_af_packet1,iface=$NEO_IF_A" --local "$NEO_IP_A:7401" --connect "$NEO_IP_B:7400"
    kill -TERM "$dsrv" 2>/dev/null || true
    wait "$dsrv" 2>/dev/null || true
    netns_down
    trap - EXIT
    rm -rf "$out"/neo-data-rtt*
else
    warn "SKIPPED the veth rows (af-xdp, tcp-veth, sockperf-udp-veth, dpdk): they need root for network namespaces"
fi
}

. "$NEO_ROOT/scripts/bench-e2e.sh"
case "$suite" in
    rtt) suite_rtt ;;
    e2e) suite_e2e ;;
    all) suite_rtt; suite_e2e ;;
esac

{
    echo "["
    for i in "${!records[@]}"; do
        sep=","; [ "$i" -eq $(( ${#records[@]} - 1 )) ] && sep=""
        echo "  ${records[$i]}$sep"
    done
    echo "]"
} >"$out/summary.json"
ln -sfn "$ts" "$NEO_ROOT/bench-results/latest"

rtt_records=() e2e_records=()
for r in "${records[@]}"; do
    if grep -q '"bench":"e2e"' <<<"$r"; then e2e_records+=("$r"); else rtt_records+=("$r"); fi
done
field() { sed -E "s/.*\"$1\":\"?([^\",}]*)\"?.*/\1/" <<<"$2"; }
if [ ${#rtt_records[@]} -gt 0 ]; then
    printf '\nRPC round trips\n%-24s %6s %10s %10s %10s %10s\n' transport size p50_us p99_us p999_us max_us
    for r in "${rtt_records[@]}"; do
        printf '%-24s %6s %10.2f %10.2f %10.2f %10.2f\n' "$(field transport "$r")" "$(field size "$r")" \
            "$(json_num p50_us "$r")" "$(json_num p99_us "$r")" "$(json_num p999_us "$r")" "$(json_num max_us "$r")"
    done
    p50_of() { for r in "${rtt_records[@]}"; do if grep -q "\"transport\":\"$1\"" <<<"$r"; then json_num p50_us "$r"; fi; done; }
    ratio() {
        local a b; a="$(p50_of "$1")"; b="$(p50_of "$2")"
        [ -n "$a" ] && [ -n "$b" ] && printf '  p50 %-10s / %-24s = %.3f\n' "$1" "$2" "$(awk -v a="$a" -v b="$b" 'BEGIN{print a/b}')"
        return 0
    }
    echo; echo "ratios (same run):"
    ratio tcp sockperf-tcp; ratio tcp sockperf-tcp-spin
    ratio af-xdp tcp-veth; ratio af-xdp sockperf-udp-veth; ratio af-xdp sockperf-udp-veth-spin
    ratio dpdk tcp-veth; ratio dpdk af-xdp
fi
[ ${#e2e_records[@]} -gt 0 ] && e2e_table
echo; echo "summary: $out/summary.json (also bench-results/latest/summary.json)"
