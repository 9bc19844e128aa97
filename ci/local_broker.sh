# A scratch directory and a broker on loopback for the client tests; both
# removed on exit (the namespaces of xdp_broker.sh too, when it was used).
# Sourced.
#
#   local_broker_init NEO                 sets WORK, installs the EXIT trap
#   local_broker_up TOPIC:PARTITIONS...   starts `neo serve`, sets BOOT
#   local_broker_down

local_broker_init() {
    LB_NEO="$1"
    LB_PID=""
    WORK="$(mktemp -d)"
    trap local_broker_cleanup EXIT
}

local_broker_up() {
    local port t
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    BOOT="127.0.0.1:$port"
    "$LB_NEO" serve --no-admin --data-dir "$WORK/data" --listen "$BOOT" >"$WORK/serve.log" 2>&1 &
    LB_PID=$!
    for _ in $(seq 100); do grep -q "neo serving" "$WORK/serve.log" && break; sleep 0.05; done
    grep -q "neo serving" "$WORK/serve.log" || { cat "$WORK/serve.log"; echo "FAIL: neo serve did not start" >&2; return 1; }
    for t in "$@"; do
        "$LB_NEO" topics create -b "$BOOT" "${t%%:*}" -p "${t##*:}" >/dev/null
    done
}

local_broker_down() {
    if [ -n "${LB_PID:-}" ]; then
        kill -TERM "$LB_PID" 2>/dev/null || true
        wait "$LB_PID" 2>/dev/null || true
    fi
    LB_PID=""
}

local_broker_cleanup() {
    local_broker_down
    if declare -F xdp_broker_down >/dev/null; then xdp_broker_down; fi
    rm -rf "$WORK"
}
