# shellcheck shell=bash disable=SC2154,SC2034  # sourced by scripts/bench.sh, which sets the variables
# The e2e suite of scripts/bench.sh (sourced): broker produce → consume
# latency at fixed rates ($e2e_rates msg/s of $e2e_size B; open loop: each
# message carries its scheduled send time, so a sender that falls behind is
# charged for it — no coordinated omission) and maximum throughput (closed
# loop), for Neo over TCP on loopback and, as root, over AF_XDP and DPDK
# across a veth pair between namespaces — and, in the same run, NATS
# JetStream (Debian's nats-server, file storage) driven at the same rates
# and size by neo-bench-nats (async-nats), on loopback and across the veth.
# Apache Iggy is a row too, skipped with the reason it cannot be built here.
#
# Durability, the same on both sides of the comparison: a message is
# acknowledged once the broker has written it to the OS (page cache), and
# data is fsynced every 2 minutes — JetStream 2.9's defaults (PubAck after
# the file-store write, sync_interval 2 min, which 2.9 cannot change), and
# Neo's `--acks 1 --fsync interval:120000`. An extra Neo row with acks=all
# and fsync=always (every ack after fdatasync) shows the cost of full
# durability; JetStream 2.9 has no equivalent.

e2e_same="acks after the write to the OS, fsync every 2 min (as JetStream 2.9)"

# e2e_record NAME PATH BASE NOTE RAW LINE [key=value ...]: one e2e record out of a JSON line.
e2e_record() {
    local name="$1" path="$2" base="$3" note="$4" raw="$5" line="$6"; shift 6
    local mode rate
    mode="$(json_str mode "$line")" rate="$(json_num rate "$line")"
    rec bench=e2e row="e2e/$name/$mode$([ "$mode" = latency ] && echo "@$rate")" transport="$name" path="$path" \
        mode="$mode" rate:="$rate" size:="$(json_num size "$line")" duration_s:="$(json_num duration_s "$line")" \
        sent:="$(json_num sent "$line")" received:="$(json_num received "$line")" count:="$(json_num measured "$line")" \
        p50_us:="$(json_num p50_us "$line")" p99_us:="$(json_num p99_us "$line")" p999_us:="$(json_num p999_us "$line")" \
        max_us:="$(json_num max_us "$line")" msgs_per_s:="$(json_num msgs_per_s "$line")" mb_per_s:="$(json_num mb_per_s "$line")" \
        durability="$(json_str durability "$line")" tool="$(json_str tool "$line")" note="$note" baseline="$base" raw="$raw" "$@"
}

# e2e_run NAME PATH RATE BASE NOTE CMD...: runs one e2e client (its last
# line is the JSON record) and records the row.
e2e_run() {
    local name="$1" path="$2" rate="$3" base="$4" note="$5"; shift 5
    local mode=latency; [ "$rate" = 0 ] && mode=throughput
    local row="e2e/$name/$mode" raw="raw/e2e-$name-$rate.json" line
    [ "$rate" != 0 ] && row="$row@$rate"
    progress "e2e $name, $mode${rate/#0/}, $e2e_size B, ${e2e_seconds}s"
    if ! line="$("$@" --rate "$rate" --size "$e2e_size" --duration "$e2e_seconds" --warmup "$e2e_warmup" --json \
        2>"$out/raw/e2e-$name-$rate.err" | tail -n 1)" || [ -z "$(json_num p50_us "$line")" ]; then
        fail "$row" e2e "$name" "$path" "the client failed; see raw/e2e-$name-$rate.err" mode="$mode" rate:="$rate"
        return 0
    fi
    echo "$line" >"$out/$raw"
    e2e_record "$name" "$path" "$base" "$note" "$raw" "$line"
}

# e2e_all NAME PATH BASE NOTE CMD...: every fixed rate, then throughput.
e2e_all() {
    local r
    for r in $e2e_rates 0; do e2e_run "$1" "$2" "$r" "$3" "$4" "${@:5}"; done
}

# e2e_skip NAME PATH REASON [skip|fail]: every mode of NAME skipped (or failed).
e2e_skip() {
    local r how="${4:-skip}"
    for r in $e2e_rates; do "$how" "e2e/$1/latency@$r" e2e "$1" "$2" "$3" mode=latency rate:="$r"; done
    "$how" "e2e/$1/throughput" e2e "$1" "$2" "$3" mode=throughput rate:=0
}

# nats_up NS_PREFIX IP PORT NAME: a JetStream server, pinned, logging to
# raw/serve-NAME.txt; sets srv_pid.
nats_up() {
    local d; d="$(mktemp -d "$out/nats-data.XXXX")"
    printf 'listen: %s:%s\njetstream {\n  store_dir: "%s"\n}\n' "$2" "$3" "$d" >"$d.conf"
    # shellcheck disable=SC2086
    $1 "${PIN_SRV[@]}" timeout 900 nats-server -c "$d.conf" >"$out/raw/serve-$4.txt" 2>&1 &
    srv_pid=$!
    wait_log "$out/raw/serve-$4.txt" "Server is ready" 100
}

suite_e2e() {
    local acks1=(--acks 1 --fsync interval:120000) port=$((base_port + 40))
    local nats_note="nats-server $nats_version, JetStream file storage, ordered push consumer, async-nats client"
    local nats_bin="$NEO_ROOT/target/release/neo-bench-nats"

    neo_serve_bg "" e2e-tcp --transport tcp --listen "127.0.0.1:$port" || true
    e2e_all tcp loopback nats-jetstream "Neo over TCP loopback; $e2e_same" \
        "${PIN_CLI[@]}" "$neo" bench e2e --connect "127.0.0.1:$port" "${acks1[@]}"
    e2e_all tcp-fsync-always loopback nats-jetstream "Neo over TCP loopback; acks=all after fdatasync of every batch (stronger than the baseline)" \
        "${PIN_CLI[@]}" "$neo" bench e2e --connect "127.0.0.1:$port" --acks all --fsync always
    stop "$srv_pid"

    if nats_up "" 127.0.0.1 "$((port + 1))" nats-jetstream; then
        e2e_all nats-jetstream loopback "" "$nats_note, loopback" \
            "${PIN_CLI[@]}" "$nats_bin" --url "nats://127.0.0.1:$((port + 1))"
    else
        e2e_skip nats-jetstream loopback "nats-server did not start; see raw/serve-nats-jetstream.txt" fail
    fi
    stop "$srv_pid"
    iggy_row

    local veth_rows=(af-xdp dpdk nats-jetstream-veth)
    if [ "$(id -u)" != 0 ]; then
        local n; for n in "${veth_rows[@]}"; do e2e_skip "$n" veth "needs root for network namespaces and veth pairs"; done
        return 0
    fi
    # shellcheck source=SCRIPTDIR/../ci/netns.sh
    . "$NEO_ROOT/ci/netns.sh"
    netns_up direct
    trap 'netns_down; cleanup' EXIT
    local A="ip netns exec $NEO_NS_A" B="ip netns exec $NEO_NS_B" lport=7600
    if nats_up "$B" "$NEO_IP_B" 4222 nats-jetstream-veth; then
        e2e_all nats-jetstream-veth veth "" "$nats_note, veth" \
            $A "${PIN_CLI[@]}" "$nats_bin" --url "nats://$NEO_IP_B:4222"
    else
        e2e_skip nats-jetstream-veth veth "nats-server did not start; see raw/serve-nats-jetstream-veth.txt" fail
    fi
    stop "$srv_pid"
    if [ "${usable[af-xdp]}" = yes ]; then
        neo_serve_bg "$B" e2e-af-xdp --transport af-xdp --interface "$NEO_IF_B" --listen "$NEO_IP_B:7400" || true
        local mode r
        mode="$(grep -o '[a-z]* XDP, [a-z -]*mode' "$srv_log" | tail -1)"
        for r in $e2e_rates 0; do
            lport=$((lport + 1))
            e2e_run af-xdp veth "$r" nats-jetstream-veth "Neo over AF_XDP ($mode), veth; $e2e_same" \
                $A "${PIN_CLI[@]}" "$neo" bench e2e --transport af-xdp --interface "$NEO_IF_A" \
                --local "$NEO_IP_A:$lport" --connect "$NEO_IP_B:7400" "${acks1[@]}"
        done
        stop "$srv_pid"
    else
        e2e_skip af-xdp veth "neo doctor: af-xdp not usable: ${reason[af-xdp]}"
    fi
    if [ "${usable[dpdk]}" = yes ]; then
        ip -n "$NEO_NS_A" addr flush dev "$NEO_IF_A"
        ip -n "$NEO_NS_B" addr flush dev "$NEO_IF_B"
        neo_serve_bg "$B" e2e-dpdk --transport dpdk --dpdk-vdev "net_af_packet0,iface=$NEO_IF_B" "${DPDK_SRV[@]}" --listen "$NEO_IP_B:7400" || true
        for r in $e2e_rates 0; do
            lport=$((lport + 1))
            e2e_run dpdk veth "$r" nats-jetstream-veth \
                "Neo over DPDK $machine_dpdk net_af_packet VIRTUAL device, both ends, --no-huge (not a NIC); $e2e_same" \
                $A "${PIN_CLI[@]}" "$neo" bench e2e --transport dpdk --dpdk-vdev "net_af_packet1,iface=$NEO_IF_A" "${DPDK_CLI[@]}" \
                --local "$NEO_IP_A:$lport" --connect "$NEO_IP_B:7400" "${acks1[@]}"
        done
        stop "$srv_pid"
    else
        e2e_skip dpdk veth "neo doctor: dpdk not usable: ${reason[dpdk]}"
    fi
    netns_down
    trap cleanup EXIT
}

# iggy_row: Apache Iggy, when its server can be built from source with
# crates.io dependencies. Its server (package `server`, binary
# `iggy-server`, in apache/iggy's core/server, with path dependencies on
# unpublished workspace crates) is not on crates.io, and its source lives on
# GitHub and in Apache release tarballs, which this machine cannot fetch.
# The registry is asked in every run, so the reason stays true.
iggy_row() {
    local why src="its source (GitHub, Apache release tarballs) cannot be fetched from this machine"
    progress "Apache Iggy: is its server on crates.io?"
    if ! timeout 30 cargo info iggy >/dev/null 2>&1; then
        why="crates.io did not answer \`cargo info iggy\` here, so whether Iggy's server can be built from crates.io alone was not checked; $src"
    elif timeout 30 cargo info iggy-server >/dev/null 2>&1; then
        why="an \`iggy-server\` crate is on crates.io now, but this script has no Iggy driver yet (docs/benchmarks.md)"
    else
        why="Apache Iggy's server (package \`server\`, binary \`iggy-server\`, apache/iggy core/server) is not published on crates.io: \`cargo info iggy-server\` finds nothing while the SDK \`iggy\` is there (the crates.io crate named \`server\` is an unrelated 0.0.0 one); $src"
    fi
    e2e_skip iggy loopback "$why"
}
