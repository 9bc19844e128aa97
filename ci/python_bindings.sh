#!/usr/bin/env bash
# The Python package (bindings/python): lints its Rust half, builds the wheel
# with maturin, installs it into a fresh virtual environment, runs the
# example and the pytest suite there against `neo serve`; then, as root, the
# suite again over AF_XDP between network namespaces.
#
#   ci/python_bindings.sh [path/to/neo]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
neo="$(realpath "${1:-$root/target/release/neo}")"
cd "$root"
tools="$root/.cache/maturin-venv"
if ! "$tools/bin/maturin" --version >/dev/null 2>&1; then
    rm -rf "$tools"
    python3 -m venv "$tools"
    "$tools/bin/pip" install -q --disable-pip-version-check "maturin==1.16.0"
fi
cargo clippy -p neo-python --features python,rdma,af-xdp,dpdk -- -D warnings 2>&1 | tail -n 1
rm -rf target/wheels
"$tools/bin/maturin" build --release -q -m bindings/python/Cargo.toml --out target/wheels 2>&1 | tail -n 2
wheel="$(ls target/wheels/neo_client-*.whl)"
. "$here/local_broker.sh"
local_broker_init "$neo"
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install -q --disable-pip-version-check "$wheel" "pytest==8.3.4"
echo "PASS python wheel: $(basename "$wheel") installs into a fresh virtual environment"

local_broker_up example:1
out="$(cd "$WORK" && "$WORK/venv/bin/python" "$root/bindings/python/example.py" "$BOOT" example tcp)"
[ "$(grep -c '^read ' <<<"$out")" = 3 ] || { echo "$out"; echo "FAIL python example" >&2; exit 1; }
echo "PASS python example (bindings/python/example.py) from the installed wheel: 3 records produced and read back"
local_broker_down
(cd "$WORK" && NEO_BIN="$neo" "$WORK/venv/bin/python" -m pytest -q -p no:cacheprovider "$root/bindings/python/tests") | tee "$WORK/pytest.log"
grep -qE '^[0-9]+ passed' "$WORK/pytest.log" || { echo "FAIL python tests" >&2; exit 1; }
echo "PASS python tests (pytest, installed wheel): $(grep -E '^[0-9]+ passed' "$WORK/pytest.log")"

. "$here/xdp_broker.sh"
require_root ci/python_bindings.sh "network namespaces, AF_XDP"
xdp_broker_up "$neo" "$WORK/xdp-data" py-orders:3 py-async:1 py-restart:2
trap local_broker_cleanup EXIT
(cd "$WORK" && in_a env NEO_BOOTSTRAP="$XDP_BOOT" NEO_TRANSPORT=af-xdp NEO_TRANSPORT_OPTIONS="$XDP_OPTS" \
    "$WORK/venv/bin/python" -m pytest -q -p no:cacheprovider "$root/bindings/python/tests") | tee "$WORK/pytest-xdp.log"
grep -qE '^[0-9]+ passed' "$WORK/pytest-xdp.log" || { echo "FAIL python tests over af-xdp" >&2; exit 1; }
echo "PASS python tests over af-xdp (neo-a -> neo-b, veth): $(grep -E '^[0-9]+ passed' "$WORK/pytest-xdp.log")"
xdp_broker_down
