#!/usr/bin/env bash
# The RDMA backend against the real kernel driver: soft-RoCE (rdma_rxe) in a
# qemu guest booted from Debian's own kernel (this host's kernel has no
# InfiniBand), with rdma-core inside. Builds the transport tests, boots the
# cached guest (ci/softroce/guest.sh), runs ci/softroce/rdma-tests.sh there
# and prints its PASS lines. Figures from the guest are from an emulated CPU.
#
#   ci/rdma.sh [path/to/neo]      (neo built with --features full or rdma)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
neo="$(realpath "${1:-$root/target/release/neo}")"
[ "$neo" = "$root/target/release/neo" ] || { echo "ci/rdma.sh: the guest runs target/release/neo of this tree" >&2; exit 2; }
cd "$root"
test_bin="$(cargo test --release -p neo-transports --features rdma --test rdma --no-run --message-format=json 2>/dev/null |
    grep -o '"executable":"[^"]*"' | tail -1 | cut -d'"' -f4)"
[ -x "$test_bin" ] || { echo "ci/rdma.sh: could not build the RDMA transport tests" >&2; exit 1; }
echo "$test_bin" >target/rdma-test-binary
start=$(date +%s)
"$here/softroce/guest.sh" run "$here/softroce/rdma-tests.sh" "$neo" "$test_bin"
echo "ci/rdma.sh: guest run (build from cache, boot, tests) took $(( $(date +%s) - start )) s"
