# shellcheck shell=bash disable=SC2154,SC2034  # sourced by scripts/bench.sh, which sets the variables
# Helpers of scripts/bench.sh (sourced): records, pinning, waiting, and the
# runners shared by the suites (neo bench rtt, sockperf ping-pong).
#
# Every row of the matrix becomes one record, one line of
# $out/records.jsonl (summary.json is their list): the foundation's record
# (bench, transport, size, p50_us, p99_us, p999_us, max_us, mean_us, count,
# tool, note, host) plus row (a stable key, e.g. rtt/tcp/64), path
# (loopback, veth, guest), baseline (the row it is compared with), raw (its
# raw JSON, with the latency CDF) and emulated; or, for a row that could not
# run here, skipped (why), or failed (what went wrong; the run then fails).

# jstr S: S as a JSON string.
jstr() {
    local s="${1//\\/\\\\}"
    s="${s//\"/\\\"}"
    s="${s//$'\n'/ }"
    s="${s//$'\t'/ }"
    printf '"%s"' "$s"
}

# jobj key=string key:=raw ...: one JSON object on one line (raw: a JSON
# number or true/false; an empty raw value becomes null).
jobj() {
    local parts=() kv k
    for kv in "$@"; do
        k="${kv%%=*}"
        if [[ "$k" == *: ]]; then
            parts+=("\"${k%:}\":${kv#*=}")
            [ -z "${kv#*=}" ] && parts[-1]="\"${k%:}\":null"
        else
            parts+=("\"$k\":$(jstr "${kv#*=}")")
        fi
    done
    local IFS=,
    echo "{${parts[*]}}"
}

# rec key=string key:=raw ...: appends one record to records.jsonl.
rec() { jobj "$@" host="$(hostname)" >>"$out/records.jsonl"; }

# skip ROW BENCH TRANSPORT PATH REASON [key=value ...]: a row that cannot run here.
skip() {
    local row="$1" bench="$2" transport="$3" path="$4" why="$5"; shift 5
    rec bench="$bench" row="$row" transport="$transport" path="$path" skipped="$why" "$@"
    warn "SKIPPED $row: $why"
}

# fail ROW BENCH TRANSPORT PATH WHAT [key=value ...]: a row that should have run and did not.
fail() {
    local row="$1" bench="$2" transport="$3" path="$4" what="$5"; shift 5
    rec bench="$bench" row="$row" transport="$transport" path="$path" failed="$what" "$@"
    warn "FAILED $row: $what"
    failures=$((failures + 1))
}

# json_num FIELD LINE: a number field of a flat JSON object ("" when absent).
json_num() { grep -o "\"$1\":[-0-9.eE+]*" <<<"$2" | head -1 | cut -d: -f2 || true; }
# json_str FIELD LINE: a string field of a flat JSON object.
json_str() { grep -o "\"$1\":\"[^\"]*\"" <<<"$2" | head -1 | cut -d'"' -f4 || true; }

# progress MESSAGE: one line per row, numbered.
progress() {
    step=$((step + 1))
    log "[$step] $* ($(( $(date +%s) - bench_start ))s)"
}

# Pinning: servers on one core, clients on another, when there are two.
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    PIN_SRV=(taskset -c 1) PIN_CLI=(taskset -c 0)
    # DPDK's EAL sets its own affinity (by default floating over every CPU).
    DPDK_SRV=(--dpdk-lcores 0@1) DPDK_CLI=(--dpdk-lcores 0@0)
    pinning="servers on CPU 1, clients on CPU 0 (taskset; DPDK: --dpdk-lcores)"
else
    PIN_SRV=() PIN_CLI=() DPDK_SRV=() DPDK_CLI=()
    pinning="none (fewer than 2 CPUs or no taskset)"
fi

# wait_log FILE PATTERN [TENTHS]: until FILE has PATTERN (10 s by default).
wait_log() {
    local _
    for _ in $(seq "${3:-100}"); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# stop PID...: SIGTERM and reap (our own children only).
stop() {
    local p
    for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

# neo_rtt NAME PATH SIZE BASELINE NOTE CLIENT_PREFIX... -- BENCH_ARGS...:
# one `neo bench rtt --json` run, recorded as row rtt/NAME/SIZE.
neo_rtt() {
    local name="$1" path="$2" size="$3" base="$4" note="$5"; shift 5
    local pre=()
    while [ "$1" != -- ]; do pre+=("$1"); shift; done
    shift
    local n="$rtt_count"
    [ "$size" -ge 65536 ] && n="$rtt_count_big"
    progress "neo bench rtt $name, $size B x $n"
    local raw="raw/rtt-$name-$size.json" line
    if ! line="$("${pre[@]}" timeout 120 "$neo" bench rtt --size "$size" --count "$n" --warmup "$((n / 10 + 1))" \
        --json "$@" 2>"$out/raw/rtt-$name-$size.err" | tail -n 1)" || [ -z "$(json_num p50_us "$line")" ]; then
        fail "rtt/$name/$size" rtt "$name" "$path" "neo bench rtt failed; see raw/rtt-$name-$size.err" size:="$size"
        return 0
    fi
    echo "$line" >"$out/$raw"
    rec bench=rtt row="rtt/$name/$size" transport="$name" path="$path" size:="$size" \
        p50_us:="$(json_num p50_us "$line")" p99_us:="$(json_num p99_us "$line")" p999_us:="$(json_num p999_us "$line")" \
        max_us:="$(json_num max_us "$line")" mean_us:="$(json_num mean_us "$line")" count:="$(json_num count "$line")" \
        tool=neo note="$note" baseline="$base" raw="$raw"
}

# sockperf_pp NAME PATH SIZE "SERVER_PREFIX" "CLIENT_PREFIX" IP PORT "SERVER_ARGS" "CLIENT_ARGS" NOTE
# One sockperf server, then a ping-pong client per size in $rtt_sizes
# (--full-rtt: round trips, like every other row). Rows rtt/NAME/SIZE.
sockperf_pp() {
    local name="$1" path="$2" spre="$3" cpre="$4" ip="$5" port="$6" sargs="$7" cargs="$8" note="$9"
    # The server's -m: the largest message it will be sent (else it drops larger ones).
    local max=0 s
    for s in $rtt_sizes; do [ "$s" -gt "$max" ] && { [[ "$name" != *udp* ]] || [ "$s" -le 65507 ]; } && max="$s"; done
    # shellcheck disable=SC2086
    $spre "${PIN_SRV[@]}" timeout 600 sockperf sr -i "$ip" -p "$port" -m "$max" $sargs >"$out/raw/serve-$name.txt" 2>&1 &
    local srv=$! size
    sleep 0.5
    for size in $rtt_sizes; do
        local row="rtt/$name/$size" log="$out/raw/rtt-$name-$size.txt"
        if [[ "$name" == *udp* ]] && [ "$size" -gt 65507 ]; then
            skip "$row" rtt "$name" "$path" "$size B does not fit one UDP datagram (65 507 B payload at most)" size:="$size"
            continue
        fi
        progress "sockperf ping-pong $name, $size B, ${sockperf_seconds}s"
        # shellcheck disable=SC2086
        $cpre "${PIN_CLI[@]}" timeout $((sockperf_seconds + 20)) sockperf pp -i "$ip" -p "$port" -m "$size" \
            -t "$sockperf_seconds" --full-rtt $cargs >"$log" 2>&1 || true
        pct() { grep -E "percentile $1 " "$log" | awk -F= '{gsub(/ /,"",$2); print $2}'; }
        local p50 obs cdf="" q v
        p50="$(pct 50.000)"
        obs="$(grep -oE 'Total [0-9]+ observations' "$log" | awk '{print $2}')"
        if [ -z "$p50" ]; then
            fail "$row" rtt "$name" "$path" "sockperf produced no percentiles; see raw/rtt-$name-$size.txt" size:="$size"
            continue
        fi
        # sockperf's own percentiles are the CDF points of the row.
        v="$(grep -E '<MIN> observation' "$log" | awk -F= '{gsub(/ /,"",$2); print $2}')"
        [ -n "$v" ] && cdf="[0,$v]"
        for q in 25.000 50.000 75.000 90.000 99.000 99.900 99.990 99.999; do
            v="$(pct "$q")"
            [ -n "$v" ] && cdf="$cdf${cdf:+,}[${q%.*}.${q#*.},$v]"
        done
        v="$(grep -E '<MAX> observation' "$log" | awk -F= '{gsub(/ /,"",$2); print $2}')"
        [ -n "$v" ] && cdf="$cdf${cdf:+,}[100,$v]"
        echo "{\"tool\":\"sockperf\",\"size\":$size,\"cdf\":[$cdf]}" >>"$log"
        rec bench=rtt row="$row" transport="$name" path="$path" size:="$size" p50_us:="$p50" \
            p99_us:="$(pct 99.000)" p999_us:="$(pct 99.900)" max_us:="$v" \
            mean_us:="$(grep -oE 'avg-rtt=[0-9.]+' "$log" | cut -d= -f2)" count:="$obs" \
            tool=sockperf note="$note" raw="raw/rtt-$name-$size.txt"
    done
    stop "$srv"
}
