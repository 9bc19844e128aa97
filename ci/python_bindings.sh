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
work="$(mktemp -d)"
srv=""
cleanup() {
    if [ -n "$srv" ]; then kill -TERM "$srv" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "$wheel" "pytest==8.3.4"
echo "PASS python wheel: $(basename "$wheel") installs into a fresh virtual environment"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
boot="127.0.0.1:$port"
"$neo" serve --no-admin --data-dir "$work/data" --listen "$boot" >"$work/serve.log" 2>&1 &
srv=$!
for _ in $(seq 100); do grep -q "neo serving" "$work/serve.log" && break; sleep 0.05; done
"$neo" topics create -b "$boot" example >/dev/null
out="$(cd "$work" && "$work/venv/bin/python" "$root/bindings/python/example.py" "$boot" example tcp)"
[ "$(grep -c '^read ' <<<"$out")" = 3 ] || { echo "$out"; echo "FAIL python example" >&2; exit 1; }
echo "PASS python example (bindings/python/example.py) from the installed wheel: 3 records produced and read back"
kill -TERM "$srv"; wait "$srv" 2>/dev/null || true; srv=""
(cd "$work" && NEO_BIN="$neo" "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$root/bindings/python/tests") | tee "$work/pytest.log"
grep -qE '^[0-9]+ passed' "$work/pytest.log" || { echo "FAIL python tests" >&2; exit 1; }
echo "PASS python tests (pytest, installed wheel): $(grep -E '^[0-9]+ passed' "$work/pytest.log")"

. "$here/xdp_broker.sh"
require_root ci/python_bindings.sh "network namespaces, AF_XDP"
xdp_broker_up "$neo" "$work/xdp-data" py-orders:3 py-async:1 py-restart:2
trap 'xdp_broker_down; cleanup' EXIT
(cd "$work" && in_a env NEO_BOOTSTRAP="$XDP_BOOT" NEO_TRANSPORT=af-xdp NEO_TRANSPORT_OPTIONS="$XDP_OPTS" \
    "$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$root/bindings/python/tests") | tee "$work/pytest-xdp.log"
grep -qE '^[0-9]+ passed' "$work/pytest-xdp.log" || { echo "FAIL python tests over af-xdp" >&2; exit 1; }
echo "PASS python tests over af-xdp (neo-a -> neo-b, veth): $(grep -E '^[0-9]+ passed' "$work/pytest-xdp.log")"
xdp_broker_down
