# Sourced by the multi-process checks (rolling_restart.sh, kafka_cluster.sh,
# secure_cluster.sh, fabric_cluster.sh):
# a scratch directory `$work`, every process added to `pids` stopped on exit,
# `fail` that shows the tail of each `$work/serve*.log` first, and
# `free_port` for loopback listeners.
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    local l
    for l in "$work"/serve*.log; do
        [ -e "$l" ] || continue
        echo "--- $(basename "$l" .log):" >&2
        tail -n 12 "$l" >&2 || true
    done
    echo "FAIL $*" >&2
    exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
