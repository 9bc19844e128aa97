#!/usr/bin/env bash
# Runs the Neo server with the embedded default: Neo RPC over TCP on
# 127.0.0.1:7400, the Kafka protocol on 127.0.0.1:9092 (NEO_KAFKA_LISTEN or
# --kafka-listen change it), data in ./neo-data.
# Installs what it needs first (Debian packages, Rust); extra arguments go to
# `neo serve` (see `neo serve --help`).
. "$(dirname "$0")/lib.sh"
ensure_apt "${NEO_BUILD_PKGS[@]}"
ensure_rust
cd "$NEO_ROOT"
cargo build --release --features full --bin neo
export NEO_KAFKA_LISTEN="${NEO_KAFKA_LISTEN:-127.0.0.1:9092}"
exec "$NEO_ROOT/target/release/neo" serve "$@"
