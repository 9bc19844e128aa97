#!/usr/bin/env bash
# Runs the Neo server with the embedded default: TCP on 127.0.0.1:7400.
# Installs what it needs first (Debian packages, Rust); extra arguments go to
# `neo serve` (see `neo serve --help`).
. "$(dirname "$0")/lib.sh"
ensure_apt "${NEO_BUILD_PKGS[@]}"
ensure_rust
cd "$NEO_ROOT"
cargo build --release --features full --bin neo
exec "$NEO_ROOT/target/release/neo" serve "$@"
