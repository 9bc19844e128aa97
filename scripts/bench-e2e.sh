# The e2e suite of scripts/bench.sh (sourced by it): broker produce→consume
# latency at a fixed rate (10 000 msg/s of 1 KB) and maximum throughput, for
# Neo over TCP on loopback and, as root, over AF_XDP and DPDK across a veth
# pair between namespaces — and, in the same run, NATS JetStream (Debian's
# nats-server 2.9, file storage) driven at the same rate and size by
# neo-bench-nats (async-nats).
#
# Durability, the same on both sides of the comparison: a message is
# acknowledged once the broker has written it to the OS (page cache), and
# data is fsynced every 2 minutes — JetStream 2.9's defaults (PubAck after
# the file-store write, sync_interval 2 min, which 2.9 cannot change), and
# Neo's `--acks 1 --fsync interval:120000`. Both survive a broker crash,
# neither survives a power loss within the interval. An extra Neo row with
# acks=all and fsync=always (every ack after fdatasync) shows the cost of
# full durability; JetStream 2.9 has no equivalent.

e2e_rate=10000 e2e_size=1024

# add_e2e NAME NOTE JSON_LINE: one record, renamed and annotated.
add_e2e() {
    local name="$1" note="$2" line="$3"
    line="$(sed -E "s/\"transport\":\"[^\"]*\"/\"transport\":\"$name\"/" <<<"$line")"
    records+=("${line%\}},\"note\":\"$note\",\"host\":\"$(hostname)\"}")
}

# neo_e2e NAME NOTE MODE_RATE CLIENT_PREFIX... -- ARGS...
neo_e2e() {
    local name="$1" note="$2" rate="$3"; shift 3
    local pre=()
    while [ "$1" != -- ]; do pre+=("$1"); shift; done
    shift
    log "neo bench e2e ($name, rate ${rate/#0/max}), ${e2e_size} B, ${e2e_seconds}s"
    local line
    if ! line="$("${pre[@]}" "$neo" bench e2e --rate "$rate" --size "$e2e_size" --duration "$e2e_seconds" \
        --warmup 1 --json "$@" 2>>"$out/e2e-clients.txt" | tail -n 1)"; then
        warn "neo bench e2e ($name) failed; see $out/e2e-clients.txt"
        return 0
    fi
    echo "$line" >"$out/e2e-$name-$rate.json"
    add_e2e "$name" "$note" "$line"
}

nats_e2e() {
    local rate="$1" line
    log "nats-jetstream e2e (rate ${rate/#0/max}), ${e2e_size} B, ${e2e_seconds}s"
    if ! line="$("$NEO_ROOT/target/release/neo-bench-nats" --url "nats://127.0.0.1:$nats_port" --rate "$rate" \
        --size "$e2e_size" --duration "$e2e_seconds" --warmup 1 --json 2>>"$out/e2e-clients.txt" | tail -n 1)"; then
        warn "neo-bench-nats failed; see $out/e2e-clients.txt"
        return 0
    fi
    echo "$line" >"$out/e2e-nats-jetstream-$rate.json"
    add_e2e nats-jetstream "nats-server $(nats-server --version | awk '{print $2}'), JetStream file storage, ordered push consumer, async-nats client" "$line"
}

# wait_port PORT: until something listens on 127.0.0.1:PORT (10 s at most).
wait_port() {
    local i
    for i in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

suite_e2e() {
    e2e_seconds=10
    [ "$quick" = 1 ] && e2e_seconds=3
    ensure_apt nats-server
    log "building neo-bench-nats (release)"
    cargo build --release -p neo-bench-nats -q
    local acks1=(--acks 1 --fsync interval:120000)
    local same="acks after the write to the OS, fsync every 2 min (as JetStream 2.9)"

    # Neo over TCP on loopback, broker in its own process.
    local neo_port=$((base_port + 10)) nats_port=$((base_port + 11))
    "$neo" serve --data-dir "$out/neo-data" --listen "127.0.0.1:$neo_port" --no-admin >"$out/e2e-neo-serve.txt" 2>&1 &
    local nsrv=$!
    wait_port "$neo_port" || { warn "neo serve did not start; see $out/e2e-neo-serve.txt"; return 1; }
    neo_e2e tcp "Neo over TCP loopback; $same" "$e2e_rate" -- --connect "127.0.0.1:$neo_port" "${acks1[@]}"
    neo_e2e tcp "Neo over TCP loopback; $same" 0 -- --connect "127.0.0.1:$neo_port" "${acks1[@]}"
    neo_e2e tcp-fsync-always "Neo over TCP loopback; acks=all after fdatasync of every batch" "$e2e_rate" -- \
        --connect "127.0.0.1:$neo_port" --acks all --fsync always
    neo_e2e tcp-fsync-always "Neo over TCP loopback; acks=all after fdatasync of every batch" 0 -- \
        --connect "127.0.0.1:$neo_port" --acks all --fsync always
    kill -TERM "$nsrv" 2>/dev/null || true
    wait "$nsrv" 2>/dev/null || true
    rm -rf "$out/neo-data"

    # NATS JetStream, same machine, same rate and size.
    mkdir -p "$out/nats-data"
    printf 'listen: 127.0.0.1:%s\njetstream {\n  store_dir: "%s"\n}\n' "$nats_port" "$out/nats-data" >"$out/nats.conf"
    nats-server -c "$out/nats.conf" >"$out/e2e-nats-server.txt" 2>&1 &
    local jsrv=$!
    if wait_port "$nats_port"; then
        nats_e2e "$e2e_rate"
        nats_e2e 0
    else
        warn "nats-server did not start; see $out/e2e-nats-server.txt"
    fi
    kill -TERM "$jsrv" 2>/dev/null || true
    wait "$jsrv" 2>/dev/null || true
    rm -rf "$out/nats-data"

    if [ "$(id -u)" != 0 ]; then
        warn "SKIPPED e2e over af-xdp and dpdk: they need root for network namespaces"
        return 0
    fi
    . "$NEO_ROOT/ci/netns.sh"
    netns_up direct
    local A="ip netns exec $NEO_NS_A" B="ip netns exec $NEO_NS_B" slog="$out/e2e-neo-serve-veth.txt"
    $B "$neo" serve --transport af-xdp --interface "$NEO_IF_B" --listen "$NEO_IP_B:7400" --no-admin \
        --data-dir "$out/neo-data-xdp" >>"$slog" 2>&1 &
    local xsrv=$!
    sleep 1
    local mode
    mode="$(grep -o 'native XDP, [a-z -]*\|generic XDP, [a-z -]*' "$slog" | head -1)"
    for r in "$e2e_rate" 0; do
        neo_e2e af-xdp "Neo over AF_XDP ($mode), veth between namespaces; $same" "$r" \
            $A -- --transport af-xdp --interface "$NEO_IF_A" --local "$NEO_IP_A:$((7401 + ${r:0:1}))" --connect "$NEO_IP_B:7400" "${acks1[@]}"
    done
    kill -TERM "$xsrv" 2>/dev/null || true
    wait "$xsrv" 2>/dev/null || true
    ip -n "$NEO_NS_A" addr flush dev "$NEO_IF_A"
    ip -n "$NEO_NS_B" addr flush dev "$NEO_IF_B"
    $B "$neo" serve --transport dpdk --dpdk-vdev "net_af_packet0,iface=$NEO_IF_B" --listen "$NEO_IP_B:7400" --no-admin \
        --data-dir "$out/neo-data-dpdk" >>"$slog" 2>&1 &
    local dsrv=$!
    sleep 2
    for r in "$e2e_rate" 0; do
        neo_e2e dpdk "Neo over DPDK 22.11 net_af_packet VIRTUAL device, both ends, --no-huge (not a NIC); $same" "$r" \
            $A -- --transport dpdk --dpdk-vdev "net_af_packet1,iface=$NEO_IF_A" --local "$NEO_IP_A:$((7401 + ${r:0:1}))" --connect "$NEO_IP_B:7400" "${acks1[@]}"
    done
    kill -TERM "$dsrv" 2>/dev/null || true
    wait "$dsrv" 2>/dev/null || true
    netns_down
    trap - EXIT
    rm -rf "$out/neo-data-xdp" "$out/neo-data-dpdk"
}

# e2e_table: the e2e rows and the ratios to JetStream.
e2e_table() {
    printf '\nBroker end to end (%s B)\n%-18s %-10s %10s %10s %10s %12s %10s\n' "$e2e_size" transport mode p50_us p99_us p999_us msgs_per_s MB_per_s
    local r
    for r in "${e2e_records[@]}"; do
        printf '%-18s %-10s %10.1f %10.1f %10.1f %12.0f %10.1f\n' "$(field transport "$r")" "$(field mode "$r")" \
            "$(json_num p50_us "$r")" "$(json_num p99_us "$r")" "$(json_num p999_us "$r")" \
            "$(json_num msgs_per_s "$r")" "$(json_num mb_per_s "$r")"
    done
    e2e_of() { for r in "${e2e_records[@]}"; do
        grep -q "\"transport\":\"$1\"" <<<"$r" && grep -q "\"mode\":\"$2\"" <<<"$r" && json_num "$3" "$r"; done; return 0; }
    echo; echo "ratios to nats-jetstream (same run, same durability):"
    local t a b
    for t in tcp af-xdp dpdk; do
        a="$(e2e_of "$t" latency p99_us)"; b="$(e2e_of nats-jetstream latency p99_us)"
        [ -n "$a" ] && [ -n "$b" ] && printf '  p99 at %s msg/s  %-8s / nats-jetstream = %.3f  (goal <= 0.5)\n' "$e2e_rate" "$t" \
            "$(awk -v a="$a" -v b="$b" 'BEGIN{print a/b}')"
        a="$(e2e_of "$t" throughput msgs_per_s)"; b="$(e2e_of nats-jetstream throughput msgs_per_s)"
        [ -n "$a" ] && [ -n "$b" ] && printf '  max msgs/s        %-8s / nats-jetstream = %.2f   (goal >= 2)\n' "$t" \
            "$(awk -v a="$a" -v b="$b" 'BEGIN{print a/b}')"
    done
    return 0
}
