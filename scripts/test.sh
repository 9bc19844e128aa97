#!/usr/bin/env bash
# The test command: installs what it needs, then formatting, lints and the
# whole test suite with the full feature set. Tests that need root,
# namespaces or a qemu guest run here too, as the backends that need them land.
. "$(dirname "$0")/lib.sh"
ensure_apt "${NEO_BUILD_PKGS[@]}" "${NEO_TEST_PKGS[@]}"
ensure_rust
cd "$NEO_ROOT"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
start=$(date +%s)

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy (all targets, full features, -D warnings)"
cargo clippy --workspace --all-targets --features full -- -D warnings
log "cargo test (workspace, full features)"
cargo test --workspace --features full 2>&1 | tee "${TMPDIR:-/tmp}/neo-test.log"
if ! ldconfig -p | grep -q 'libqpl\.so' && [ -z "${NEO_QPL_LIB:-}" ]; then
    warn "SKIPPED accel/tests/qpl.rs (QPL deflate interop): libqpl is not installed (Debian packages no QPL; build it from Intel's sources and set NEO_QPL_LIB to run it)"
fi
passed=$(grep -E '^test result:' "${TMPDIR:-/tmp}/neo-test.log" | awk '{s+=$4} END {print s+0}')
failed=$(grep -E '^test result:' "${TMPDIR:-/tmp}/neo-test.log" | awk '{s+=$6} END {print s+0}')

log "release build (full features) for the namespace tests"
cargo build --release --features full --bin neo
# ci_step DESCRIPTION SCRIPT [ARG...]: runs a ci/ script (its arguments,
# then the release binary) and counts its PASS lines.
ci_step() {
    local what="$1" script="$2"
    shift 2
    local out="${TMPDIR:-/tmp}/neo-$(basename "$script" .sh)${1:+-$1}.log"
    log "$what"
    "$script" "$@" target/release/neo | tee "$out"
    passed=$((passed + $(grep -c '^PASS' "$out" || true)))
}
ci_step "ci/af_xdp.sh: AF_XDP RPC over veth between namespaces, and with 5% nftables loss" ci/af_xdp.sh
ci_step "ci/dpdk.sh: DPDK on net_af_packet (veth) and net_tap, --no-huge; auto fallback" ci/dpdk.sh
log "(transports/tests/rdma.rs skipped on this host: its kernel has no InfiniBand; it runs in the guest here)"
ci_step "ci/rdma.sh: the RDMA transport over soft-RoCE (rxe) in a qemu guest with Debian's kernel" ci/rdma.sh
ci_step "ci/c_bindings.sh: the C ABI's test and example under valgrind against neo serve" ci/c_bindings.sh
ci_step "ci/python_bindings.sh: the Python wheel (maturin) in a fresh venv: example and pytest against neo serve" ci/python_bindings.sh
ci_step "ci/kafka.sh: kcat, confluent-kafka and aiokafka against neo serve --kafka-listen" ci/kafka.sh
ci_step "ci/kafka_cluster.sh: kcat against a replicated 3-node cluster: metadata with leaders and ISRs, acks=all through a leader kill, exactly once" ci/kafka_cluster.sh
ci_step "ci/secure_cluster.sh: a replicated cluster under --neo-auth and the authorizer: followers authenticate with SCRAM, a wrong password is refused" ci/secure_cluster.sh
ci_step "ci/fabric_cluster.sh af-xdp: a 3-node cluster replicating over AF_XDP (namespaces, veth): acks=all through a leader kill, exactly once" ci/fabric_cluster.sh af-xdp
ci_step "ci/fabric_cluster.sh dpdk: the same cluster replicating over DPDK (net_af_packet on veth, --no-huge)" ci/fabric_cluster.sh dpdk
ci_step "ci/deploy.sh: systemd-analyze verify, the container image (buildah, debootstrap rootfs), kustomize + kubernetes-validate" ci/deploy.sh
ci_step "ci/rolling_restart.sh: a replicated 3-node cluster restarted one node at a time under idempotent acks=all producers; nothing lost or doubled" ci/rolling_restart.sh
ci_step "ci/security.sh: TLS 1.3/mTLS (openssl s_client), kcat SASL_SSL SCRAM, ACLs, audit, quotas, reload, promtool" ci/security.sh
ci_step "ci/bench_quick.sh: scripts/bench.sh all --quick; every row measured or skipped with its reason, table and plots written" ci/bench_quick.sh
log "done in $(( $(date +%s) - start ))s"
echo "tests: ${passed} passed, ${failed} failed"
