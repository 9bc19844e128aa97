#!/usr/bin/env bash
# The C ABI (bindings/c) against a real broker: the C test and the example,
# compiled with gcc -Wall -Wextra -Werror, run under valgrind (no definite
# or indirect leak, no invalid access) against `neo serve` on loopback; then,
# as root, the C test over AF_XDP between network namespaces.
#
#   ci/c_bindings.sh [path/to/neo]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
neo="$(realpath "${1:-$root/target/release/neo}")"
cd "$root"
cargo build --release -p neo-c --features rdma,af-xdp,dpdk 2>&1 | tail -n 1
work="$(mktemp -d)"
srv=""
cleanup() {
    if [ -n "$srv" ]; then kill -TERM "$srv" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cflags=(-std=c11 -Wall -Wextra -Werror -g -I bindings/c/include -L target/release -lneo_c "-Wl,-rpath,$root/target/release")
gcc bindings/c/tests/test_neo.c "${cflags[@]}" -o "$work/test_neo"
gcc bindings/c/examples/produce_consume.c "${cflags[@]}" -o "$work/example"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
boot="127.0.0.1:$port"
"$neo" serve --no-admin --data-dir "$work/data" --listen "$boot" >"$work/serve.log" 2>&1 &
srv=$!
for _ in $(seq 100); do grep -q "neo serving" "$work/serve.log" && break; sleep 0.05; done
"$neo" topics create -b "$boot" c-abi -p 3 >/dev/null
"$neo" topics create -b "$boot" example >/dev/null

vg=(valgrind -q --error-exitcode=97 --leak-check=full --errors-for-leak-kinds=definite,indirect)
"${vg[@]}" "$work/test_neo" "$boot" c-abi
out="$("${vg[@]}" "$work/example" "$boot" example tcp)"
grep -c '^read ' <<<"$out" | grep -qx 3 || { echo "$out"; echo "FAIL c example: did not read its 3 records" >&2; exit 1; }
echo "PASS c example (bindings/c/examples/produce_consume.c) under valgrind: 3 records produced and read back"

# Over AF_XDP: the broker in neo-b, the C test in neo-a (no valgrind here:
# it does not model the XSK rings the kernel writes).
. "$here/xdp_broker.sh"
require_root ci/c_bindings.sh "network namespaces, AF_XDP"
kill -TERM "$srv" 2>/dev/null; wait "$srv" 2>/dev/null || true; srv=""
xdp_broker_up "$neo" "$work/xdp-data" c-abi:3
trap 'xdp_broker_down; cleanup' EXIT
in_a "$work/test_neo" "$XDP_BOOT" c-abi af-xdp "$XDP_OPTS"
xdp_broker_down
