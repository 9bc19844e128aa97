# shellcheck shell=bash disable=SC2154,SC2034  # sourced by scripts/bench.sh, which sets the variables
# The rtt suite of scripts/bench.sh (sourced): request/response round trips,
# one call in flight, at each size of $rtt_sizes (64 B, 1 KB, 64 KB).
#
# loopback: Neo RPC over TCP (`tcp`: `neo serve` and `neo bench rtt`, both
#   busy-polling) against sockperf ping-pong over TCP and UDP, with
#   sockperf's defaults (`sockperf-tcp`, `sockperf-udp`: blocking client,
#   epoll server) and spinning (`-spin`: non-blocking sockets, client and
#   server polling with a zero timeout) — the fair baseline of a busy-polling
#   Neo.
# veth between two namespaces (root): Neo RPC over AF_XDP (`af-xdp`), TCP
#   (`tcp-veth`) and DPDK's net_af_packet virtual device (`dpdk`), against
#   the same four sockperf variants across the same veth pair.
# RDMA: scripts/bench-rdma.sh.

# neo_serve_bg NS_PREFIX NAME ARGS...: `neo serve` pinned, in the
# background, logging to raw/serve-NAME.txt (srv_log); sets srv_pid and
# waits until it serves.
neo_serve_bg() {
    local pre="$1"
    srv_log="$out/raw/serve-$2.txt"
    shift 2
    # shellcheck disable=SC2086
    $pre "${PIN_SRV[@]}" timeout 900 "$neo" serve --no-admin --data-dir "$(mktemp -d "$out/neo-data.XXXX")" "$@" >"$srv_log" 2>&1 &
    srv_pid=$!
    wait_log "$srv_log" "neo serving" 150
}

# veth_base SIZE: the baseline of the raw-frame (UDP) rows: spinning kernel
# UDP on the same veth, or TCP where one datagram cannot carry SIZE.
veth_base() { if [ "$1" -gt 65507 ]; then echo sockperf-tcp-veth-spin; else echo sockperf-udp-veth-spin; fi; }

# skip_rows PATH REASON NAME...: every size of each NAME skipped.
skip_rows() {
    local path="$1" why="$2" name size; shift 2
    for name in "$@"; do
        for size in $rtt_sizes; do skip "rtt/$name/$size" rtt "$name" "$path" "$why" size:="$size"; done
    done
}

suite_rtt() {
    local size port=$((base_port + 20))
    local spin_note="non-blocking sockets, client and server spin (epoll timeout 0)"
    neo_serve_bg "" rtt-tcp --transport tcp --listen "127.0.0.1:$port" || true
    for size in $rtt_sizes; do
        neo_rtt tcp loopback "$size" sockperf-tcp-spin "Neo RPC echo over TCP, loopback; neo serve and client busy-poll" \
            "${PIN_CLI[@]}" -- --transport tcp --connect "127.0.0.1:$port"
    done
    stop "$srv_pid"
    sockperf_pp sockperf-tcp loopback "" "" 127.0.0.1 "$((port + 1))" "--tcp" "--tcp" \
        "sockperf $sockperf_version TCP, defaults (blocking client, epoll server), loopback"
    sockperf_pp sockperf-tcp-spin loopback "" "" 127.0.0.1 "$((port + 2))" "--tcp --nonblocked --timeout 0" \
        "--tcp --nonblocked --timeout 0" "sockperf $sockperf_version TCP, $spin_note, loopback"
    sockperf_pp sockperf-udp loopback "" "" 127.0.0.1 "$((port + 3))" "" "" \
        "sockperf $sockperf_version UDP, defaults (blocking client, epoll server), loopback"
    sockperf_pp sockperf-udp-spin loopback "" "" 127.0.0.1 "$((port + 4))" "--nonblocked --timeout 0" \
        "--nonblocked --timeout 0" "sockperf $sockperf_version UDP, $spin_note, loopback"

    local veth_rows=(af-xdp tcp-veth dpdk sockperf-tcp-veth sockperf-tcp-veth-spin sockperf-udp-veth sockperf-udp-veth-spin)
    if [ "$(id -u)" != 0 ]; then
        skip_rows veth "needs root for network namespaces and veth pairs" "${veth_rows[@]}"
        return 0
    fi
    # shellcheck source=SCRIPTDIR/../ci/netns.sh
    . "$NEO_ROOT/ci/netns.sh"
    netns_up direct
    trap 'netns_down; cleanup' EXIT
    local A="ip netns exec $NEO_NS_A" B="ip netns exec $NEO_NS_B" lport=7500
    machine_nic="$($A ethtool -i "$NEO_IF_A" 2>/dev/null | awk '/^driver:/ {print $2}') ($NEO_IF_A, veth pair between namespaces; no physical NIC is used)"
    if [ "${usable[af-xdp]}" = yes ]; then
        if neo_serve_bg "$B" rtt-af-xdp --transport af-xdp --interface "$NEO_IF_B" --listen "$NEO_IP_B:7400"; then
            local xdp_mode; xdp_mode="$(grep -o '[a-z]* XDP, [a-z -]*mode' "$srv_log" | head -1)"
            machine_xdp="$xdp_mode (AF_XDP on veth: the veth driver offers no zero-copy)"
            for size in $rtt_sizes; do
                lport=$((lport + 1))
                neo_rtt af-xdp veth "$size" "$(veth_base "$size")" "Neo RPC echo over AF_XDP ($xdp_mode), veth" \
                    $A "${PIN_CLI[@]}" -- --transport af-xdp --interface "$NEO_IF_A" --local "$NEO_IP_A:$lport" --connect "$NEO_IP_B:7400"
            done
            stop "$srv_pid"
        else
            stop "$srv_pid"
            for size in $rtt_sizes; do fail "rtt/af-xdp/$size" rtt af-xdp veth "neo serve --transport af-xdp did not start" size:="$size"; done
        fi
    else
        skip_rows veth "neo doctor: af-xdp not usable: ${reason[af-xdp]}" af-xdp
    fi
    neo_serve_bg "$B" rtt-tcp-veth --transport tcp --listen "$NEO_IP_B:7402" || true
    for size in $rtt_sizes; do
        neo_rtt tcp-veth veth "$size" sockperf-tcp-veth-spin "Neo RPC echo over TCP, veth; neo serve and client busy-poll" \
            $A "${PIN_CLI[@]}" -- --transport tcp --connect "$NEO_IP_B:7402"
    done
    stop "$srv_pid"
    sockperf_pp sockperf-tcp-veth veth "$B" "$A" "$NEO_IP_B" "$((port + 5))" "--tcp" "--tcp" \
        "sockperf $sockperf_version TCP, defaults, veth"
    sockperf_pp sockperf-tcp-veth-spin veth "$B" "$A" "$NEO_IP_B" "$((port + 6))" "--tcp --nonblocked --timeout 0" \
        "--tcp --nonblocked --timeout 0" "sockperf $sockperf_version TCP, $spin_note, veth"
    sockperf_pp sockperf-udp-veth veth "$B" "$A" "$NEO_IP_B" "$((port + 7))" "" "" \
        "sockperf $sockperf_version UDP, defaults, veth"
    sockperf_pp sockperf-udp-veth-spin veth "$B" "$A" "$NEO_IP_B" "$((port + 8))" "--nonblocked --timeout 0" \
        "--nonblocked --timeout 0" "sockperf $sockperf_version UDP, $spin_note, veth"
    if [ "${usable[dpdk]}" = yes ]; then
        # DPDK owns both ends of the pair (its engine answers ARP): no kernel IPs.
        ip -n "$NEO_NS_A" addr flush dev "$NEO_IF_A"
        ip -n "$NEO_NS_B" addr flush dev "$NEO_IF_B"
        local dnote="Neo RPC echo over DPDK $machine_dpdk net_af_packet VIRTUAL device on the veth, both ends, --no-huge (not a NIC)"
        if neo_serve_bg "$B" rtt-dpdk --transport dpdk --dpdk-vdev "net_af_packet0,iface=$NEO_IF_B" "${DPDK_SRV[@]}" --listen "$NEO_IP_B:7400"; then
            for size in $rtt_sizes; do
                lport=$((lport + 1))
                neo_rtt dpdk veth "$size" "$(veth_base "$size")" "$dnote" \
                    $A "${PIN_CLI[@]}" -- --transport dpdk --dpdk-vdev "net_af_packet1,iface=$NEO_IF_A" "${DPDK_CLI[@]}" --local "$NEO_IP_A:$lport" --connect "$NEO_IP_B:7400"
            done
        else
            for size in $rtt_sizes; do fail "rtt/dpdk/$size" rtt dpdk veth "neo serve --transport dpdk did not start" size:="$size"; done
        fi
        stop "$srv_pid"
    else
        skip_rows veth "neo doctor: dpdk not usable: ${reason[dpdk]}" dpdk
    fi
    netns_down
    trap cleanup EXIT
}
