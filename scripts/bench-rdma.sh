# shellcheck shell=bash disable=SC2154,SC2034  # sourced by scripts/bench.sh, which sets the variables
# The RDMA rows of scripts/bench.sh (sourced).
#
# On the host, when `neo doctor` finds RDMA usable and NEO_BENCH_RDMA_ADDR
# names the IPv4 address of the RDMA netdev (NEO_BENCH_RDMA_DEV the verbs
# device, e.g. mlx5_0; NEO_BENCH_RDMA_GID its RoCE v2 IPv4 GID index):
# Neo RPC over rdma (`rdma`) and perftest's ib_send_lat (`ib_send_lat`) on
# that device, and the broker e2e over rdma against NATS JetStream.
#
# Always (when qemu can run), in the soft-RoCE guest of ci/rdma.sh: the same
# rows on rxe0 (`rdma-tcg-guest`, `ib_send_lat-tcg-guest`). Its CPU is
# emulated by qemu TCG: those rows are labelled so and are no performance
# figure; they prove the path and give the ratio to ib_send_lat on the same
# emulated device.
#
# ib_send_lat prints half the round trip (perftest's convention); its
# figures are doubled here so every row is a full round trip.

rdma_note_guest="soft-RoCE rxe0 on a dummy netdev in a qemu guest (Debian kernel), TCG-emulated guest CPU"

# dbl X: 2 X, three decimals.
dbl() { awk -v v="$1" 'BEGIN { printf "%.3f", 2 * v }'; }

# ib_record NAME PATH SIZE FIELDS... [key=value...]: an ib_send_lat result
# line (#bytes #iters t_min t_max t_typical t_avg t_stdev 99% 99.9%), doubled.
ib_record() {
    local name="$1" path="$2" size="$3" line="$4" emu="$5" note="$6"
    read -r _ iters tmin tmax ttyp tavg _ p99 p999 <<<"$line"
    local raw="raw/rtt-$name-$size.json"
    jobj tool=ib_send_lat size:="$size" iters:="$iters" perftest_line="$line" \
        cdf:="[[0,$(dbl "$tmin")],[50,$(dbl "$ttyp")],[99,$(dbl "$p99")],[99.9,$(dbl "$p999")],[100,$(dbl "$tmax")]]" >"$out/$raw"
    rec bench=rtt row="rtt/$name/$size" transport="$name" path="$path" size:="$size" p50_us:="$(dbl "$ttyp")" \
        p99_us:="$(dbl "$p99")" p999_us:="$(dbl "$p999")" max_us:="$(dbl "$tmax")" mean_us:="$(dbl "$tavg")" count:="$iters" \
        tool=ib_send_lat note="perftest $perftest_version, RC SEND, $note; its half round trips doubled" raw="$raw" emulated:="$emu"
}

# rdma_skip_all WHERE REASON: every RDMA row of WHERE (host or guest) skipped.
rdma_skip_all() {
    local sfx="" path=rdma size
    [ "$1" = guest ] && sfx="-tcg-guest" path=guest
    for size in $rtt_sizes; do
        skip "rtt/rdma$sfx/$size" rtt "rdma$sfx" "$path" "$2" size:="$size"
        skip "rtt/ib_send_lat$sfx/$size" rtt "ib_send_lat$sfx" "$path" "$2" size:="$size"
    done
    if [ "$1" = guest ]; then
        skip "e2e/rdma$sfx/latency@$rdma_guest_rate" e2e "rdma$sfx" "$path" "$2" mode=latency rate:="$rdma_guest_rate"
        skip "e2e/rdma$sfx/throughput" e2e "rdma$sfx" "$path" "$2" mode=throughput rate:=0
    else
        e2e_skip rdma "$path" "$2"
    fi
}

suite_rdma() {
    if [ "${usable[rdma]}" != yes ]; then
        rdma_skip_all host "neo doctor: rdma not usable on this host: ${reason[rdma]}"
    elif [ -z "${NEO_BENCH_RDMA_ADDR:-}" ]; then
        rdma_skip_all host "rdma is usable here, but NEO_BENCH_RDMA_ADDR (the RDMA netdev's IPv4 address) is not set"
    else
        rdma_host
    fi
    if ! command -v qemu-system-x86_64 >/dev/null; then
        rdma_skip_all guest "qemu-system-x86_64 is not installed (the soft-RoCE guest needs it)"
    elif [ "${NEO_BENCH_NO_GUEST:-0}" = 1 ]; then
        rdma_skip_all guest "NEO_BENCH_NO_GUEST=1"
    else
        rdma_guest
    fi
}

rdma_host() {
    local addr="$NEO_BENCH_RDMA_ADDR" dev="${NEO_BENCH_RDMA_DEV:-$(ls /sys/class/infiniband | head -1)}" size
    local gid=(); [ -n "${NEO_BENCH_RDMA_GID:-}" ] && gid=(-x "$NEO_BENCH_RDMA_GID")
    local n
    machine_rdma="$dev ($(cat "/sys/class/infiniband/$dev/node_type" 2>/dev/null || echo ?)), $addr"
    for size in $rtt_sizes; do
        n="$rtt_count"; [ "$size" -ge 65536 ] && n="$rtt_count_big"
        progress "ib_send_lat on $dev, $size B x $n"
        "${PIN_SRV[@]}" timeout 120 ib_send_lat -d "$dev" "${gid[@]}" -s "$size" -n "$n" >"$out/raw/ib-$size-server.txt" 2>&1 &
        sleep 1
        local line
        line="$("${PIN_CLI[@]}" timeout 120 ib_send_lat -d "$dev" "${gid[@]}" -s "$size" -n "$n" "$addr" 2>&1 |
            grep -E "^ +$size +$n " | head -1)" || true
        wait || true
        if [ -n "$line" ]; then ib_record ib_send_lat rdma "$size" "$line" false "$dev"
        else fail "rtt/ib_send_lat/$size" rtt ib_send_lat rdma "ib_send_lat gave no result" size:="$size"; fi
    done
    neo_serve_bg "" rdma --transport rdma --listen "$addr:7471" || true
    for size in $rtt_sizes; do
        neo_rtt rdma rdma "$size" ib_send_lat "Neo RPC echo over rdma (RC QPs, rdma_cm) on $dev" \
            "${PIN_CLI[@]}" -- --transport rdma --connect "$addr:7471"
    done
    e2e_all rdma rdma nats-jetstream "Neo over rdma on $dev; $e2e_same" \
        "${PIN_CLI[@]}" "$neo" bench e2e --transport rdma --connect "$addr:7471" --acks 1 --fsync interval:120000
    stop "$srv_pid"
}

rdma_guest() {
    progress "soft-RoCE guest: build (cached under .cache/softroce) and boot"
    if ! "$NEO_ROOT/ci/softroce/guest.sh" build >"$out/raw/rdma-guest-build.txt" 2>&1; then
        rdma_skip_all guest "the soft-RoCE guest could not be built: $(tail -1 "$out/raw/rdma-guest-build.txt")"
        return 0
    fi
    local size
    {
        echo "SIZES=\"$rtt_sizes\" RTT_COUNT=$guest_rtt_count RTT_COUNT_BIG=$guest_rtt_count_big IB_ITERS=$guest_ib_iters"
        echo "E2E_RATE=$rdma_guest_rate E2E_SIZE=$e2e_size E2E_SECS=$guest_e2e_seconds E2E_WARMUP=$e2e_warmup"
    } >"$NEO_ROOT/target/bench-rdma.env"
    local log="$out/raw/rdma-guest.txt"
    progress "soft-RoCE guest: ib_send_lat and Neo rdma at $rtt_sizes B, e2e over rdma (emulated CPU)"
    NEO_SOFTROCE_TIMEOUT=900 "$NEO_ROOT/ci/softroce/guest.sh" run "$NEO_ROOT/ci/bench_rdma_guest.sh" "$neo" 2>&1 |
        tr -d '\r' >"$log" || true
    machine_rdma="soft-RoCE (rdma_rxe) in a qemu TCG guest, kernel $(awk '/^BENCH-INFO guest_kernel/ {print $3}' "$log")"
    local kind a b rest line emu=true
    while read -r kind a b rest; do
        case "$kind" in
            BENCH-IB) ib_record ib_send_lat-tcg-guest guest "$a" "$b $rest" "$emu" "$rdma_note_guest" ;;
            BENCH-NEO)
                line="$rest"
                if [ "$a" = rtt ]; then
                    echo "$line" >"$out/raw/rtt-rdma-tcg-guest-$b.json"
                    rec bench=rtt row="rtt/rdma-tcg-guest/$b" transport=rdma-tcg-guest path=guest size:="$b" \
                        p50_us:="$(json_num p50_us "$line")" p99_us:="$(json_num p99_us "$line")" \
                        p999_us:="$(json_num p999_us "$line")" max_us:="$(json_num max_us "$line")" \
                        mean_us:="$(json_num mean_us "$line")" count:="$(json_num count "$line")" tool=neo \
                        note="Neo RPC echo over rdma (RC QPs, rdma_cm), $rdma_note_guest" baseline=ib_send_lat-tcg-guest \
                        raw="raw/rtt-rdma-tcg-guest-$b.json" emulated:=true
                else
                    echo "$line" >"$out/raw/e2e-rdma-tcg-guest-$b.json"
                    e2e_record rdma-tcg-guest guest "" "Neo over rdma, $rdma_note_guest; $e2e_same" \
                        "raw/e2e-rdma-tcg-guest-$b.json" "$line" emulated:=true
                fi ;;
            BENCH-FAIL) fail "$a" "${a%%/*}" "$(cut -d/ -f2 <<<"$a")" guest "$b $rest" ;;
        esac
    done < <(grep '^BENCH-' "$log")
    local row
    for row in $(for size in $rtt_sizes; do echo "rtt/rdma-tcg-guest/$size rtt/ib_send_lat-tcg-guest/$size"; done) \
        "e2e/rdma-tcg-guest/latency@$rdma_guest_rate" e2e/rdma-tcg-guest/throughput; do
        grep -q "\"row\":\"$row\"" "$out/records.jsonl" ||
            fail "$row" "${row%%/*}" "$(cut -d/ -f2 <<<"$row")" guest "no result from the guest; see raw/rdma-guest.txt"
    done
}
