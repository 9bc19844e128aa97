# A broker serving over AF_XDP in network namespace neo-b, for clients in
# neo-a (ci/netns.sh's direct veth pair). Sourced by the bindings' scripts.
#
#   xdp_broker_up NEO DATA TOPIC:PARTITIONS...   sets XDP_BOOT and XDP_OPTS
#   xdp_broker_down
# The topics are made first through a short TCP-serving run on the same data
# directory (the CLI speaks TCP), then the broker serves AF_XDP on neob0.
. "$(dirname "${BASH_SOURCE[0]}")/netns.sh"

xdp_broker_up() {
    local neo="$1" data="$2"
    shift 2
    netns_up direct
    in_b ip link set lo up
    in_b "$neo" serve --no-admin --data-dir "$data" --listen 127.0.0.1:7499 >"$data.tcp.log" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do grep -q "neo serving" "$data.tcp.log" && break; sleep 0.05; done
    local t
    for t in "$@"; do
        in_b "$neo" topics create -b 127.0.0.1:7499 "${t%%:*}" -p "${t##*:}" >/dev/null
    done
    kill -TERM "$pid"
    wait "$pid" || true
    in_b "$neo" serve --no-admin --data-dir "$data" --transport af-xdp --interface "$NEO_IF_B" \
        --listen "$NEO_IP_B:7400" >"$data.xdp.log" 2>&1 &
    XDP_PID=$!
    for _ in $(seq 100); do grep -q "neo serving" "$data.xdp.log" && break; sleep 0.05; done
    grep -q "neo serving" "$data.xdp.log" || { cat "$data.xdp.log"; echo "FAIL: neo serve over af-xdp did not start" >&2; return 1; }
    XDP_BOOT="$NEO_IP_B:7400"
    XDP_OPTS="interface=$NEO_IF_A,local=$NEO_IP_A:7401"
}

xdp_broker_down() {
    if [ -n "${XDP_PID:-}" ]; then
        kill -TERM "$XDP_PID" 2>/dev/null || true
        wait "$XDP_PID" 2>/dev/null || true
    fi
    XDP_PID=""
    netns_down
}
