#!/usr/bin/env bash
# Neo's benchmark matrix. Each suite runs Neo and its baselines in the same
# invocation, prints a table with ratios, and writes
# bench-results/<timestamp>/summary.json (a JSON list of records) plus
# bench-results/latest -> <timestamp>.
#
#   scripts/bench.sh rtt [--size N] [--count N] [--seconds S]
#
# rtt: Neo RPC request/response over TCP on loopback against sockperf TCP
#      ping-pong of the same size: `sockperf-tcp` (sockperf's defaults: blocking
#      client, epoll server) and `sockperf-tcp-spin` (non-blocking sockets, the
#      client spinning), the harder baseline.
. "$(dirname "$0")/lib.sh"

suite="${1:-rtt}"; shift || true
size=64 count=20000 seconds=3
while [ $# -gt 0 ]; do
    case "$1" in
        --size) size="$2"; shift 2 ;;
        --count) count="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$suite" = rtt ] || { echo "unknown suite '$suite' (known: rtt)" >&2; exit 2; }

ensure_apt "${NEO_BUILD_PKGS[@]}" sockperf
ensure_rust
cd "$NEO_ROOT"
log "building neo (release, full features)"
cargo build --release --features full --bin neo -q
neo="$NEO_ROOT/target/release/neo"

ts="$(date -u +%Y%m%dT%H%M%SZ)"
out="$NEO_ROOT/bench-results/$ts"
mkdir -p "$out"
records=()

# record BENCH TRANSPORT SIZE P50 P99 P999 MAX MEAN COUNT TOOL NOTE
record() {
    records+=("$(printf '{"bench":"%s","transport":"%s","size":%s,"p50_us":%s,"p99_us":%s,"p999_us":%s,"max_us":%s,"mean_us":%s,"count":%s,"tool":"%s","note":"%s","host":"%s"}' \
        "$1" "$2" "$3" "$4" "$5" "$6" "$7" "$8" "$9" "${10}" "${11}" "$(hostname)")")
}

# json_num FIELD LINE: a number field out of a flat JSON object.
json_num() { sed -E "s/.*\"$1\":([0-9.eE+-]+).*/\1/" <<<"$2"; }

log "neo bench rtt --transport tcp --size $size --count $count"
line="$("$neo" bench rtt --transport tcp --size "$size" --count "$count" --json | tail -n 1)"
echo "$line" >"$out/neo-tcp.json"
record rtt tcp "$size" "$(json_num p50_us "$line")" "$(json_num p99_us "$line")" "$(json_num p999_us "$line")" \
    "$(json_num max_us "$line")" "$(json_num mean_us "$line")" "$(json_num count "$line")" neo "Neo RPC echo, loopback, client and server busy-poll"

# sockperf_pp NAME PORT SERVER_ARGS CLIENT_ARGS NOTE
sockperf_pp() {
    local name="$1" port="$2" sargs="$3" cargs="$4" note="$5" log="$out/$1.txt"
    log "sockperf ping-pong ($name), $size B, ${seconds}s, loopback"
    # shellcheck disable=SC2086
    timeout $((seconds + 20)) sockperf sr --tcp -i 127.0.0.1 -p "$port" $sargs >"$out/$name-server.txt" 2>&1 &
    local srv=$!
    sleep 0.5
    # shellcheck disable=SC2086
    timeout $((seconds + 15)) sockperf pp --tcp -i 127.0.0.1 -p "$port" -m "$size" -t "$seconds" --full-rtt $cargs >"$log" 2>&1 || true
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
    record rtt "$name" "$size" "$p50" "$p99" "$p999" "$max" "$mean" "$obs" sockperf "$note"
}
base_port=$(( 20000 + $$ % 20000 ))
sockperf_pp sockperf-tcp "$base_port" "" "" "sockperf 3.7 defaults: blocking client, epoll server"
sockperf_pp sockperf-tcp-spin "$((base_port + 1))" "--nonblocked" "--nonblocked --timeout 0" \
    "sockperf 3.7, non-blocking sockets, client spins (server recvfrom loop)"

{
    echo "["
    for i in "${!records[@]}"; do
        sep=","; [ "$i" -eq $(( ${#records[@]} - 1 )) ] && sep=""
        echo "  ${records[$i]}$sep"
    done
    echo "]"
} >"$out/summary.json"
ln -sfn "$ts" "$NEO_ROOT/bench-results/latest"

# Table with ratios against each baseline.
neo_p50="$(json_num p50_us "${records[0]}")"
printf '\n%-18s %6s %10s %10s %10s %10s %14s\n' transport size p50_us p99_us p999_us max_us "neo_p50/this"
for r in "${records[@]}"; do
    t="$(sed -E 's/.*"transport":"([^"]*)".*/\1/' <<<"$r")"
    p50="$(json_num p50_us "$r")"
    printf '%-18s %6s %10.2f %10.2f %10.2f %10.2f %14.3f\n' "$t" "$size" "$p50" "$(json_num p99_us "$r")" \
        "$(json_num p999_us "$r")" "$(json_num max_us "$r")" "$(awk -v a="$neo_p50" -v b="$p50" 'BEGIN{print a/b}')"
done
echo
echo "summary: $out/summary.json (also bench-results/latest/summary.json)"
