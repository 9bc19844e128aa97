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
. "$here/local_broker.sh"
local_broker_init "$neo"
cflags=(-std=c11 -Wall -Wextra -Werror -g -I bindings/c/include -L target/release -lneo_c "-Wl,-rpath,$root/target/release")
gcc bindings/c/tests/test_neo.c "${cflags[@]}" -o "$WORK/test_neo"
gcc bindings/c/examples/produce_consume.c "${cflags[@]}" -o "$WORK/example"

local_broker_up c-abi:3 example:1

vg=(valgrind -q --error-exitcode=97 --leak-check=full --errors-for-leak-kinds=definite,indirect)
"${vg[@]}" "$WORK/test_neo" "$BOOT" c-abi
out="$("${vg[@]}" "$WORK/example" "$BOOT" example tcp)"
grep -c '^read ' <<<"$out" | grep -qx 3 || { echo "$out"; echo "FAIL c example: did not read its 3 records" >&2; exit 1; }
echo "PASS c example (bindings/c/examples/produce_consume.c) under valgrind: 3 records produced and read back"

# Over AF_XDP: the broker in neo-b, the C test in neo-a (no valgrind here:
# it does not model the XSK rings the kernel writes).
. "$here/xdp_broker.sh"
require_root ci/c_bindings.sh "network namespaces, AF_XDP"
local_broker_down
xdp_broker_up "$neo" "$WORK/xdp-data" c-abi:3
trap local_broker_cleanup EXIT
in_a "$WORK/test_neo" "$XDP_BOOT" c-abi af-xdp "$XDP_OPTS"
xdp_broker_down
