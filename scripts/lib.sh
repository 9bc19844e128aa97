# Shared helpers for Neo's scripts: repository root, idempotent installs of
# Debian packages and the Rust toolchain. Sourced, not run.

set -euo pipefail
NEO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export NEO_ROOT
NEO_MIN_RUST="1.89"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf '\033[1;33m!!! %s\033[0m\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        warn "need root for: $*"; return 1; fi
}

# ensure_apt PKG...: installs the Debian packages that are missing, nothing else.
ensure_apt() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_rust: a Rust toolchain new enough for the workspace, via rustup when absent.
ensure_rust() {
    [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
    if ! command -v cargo >/dev/null; then
        ensure_apt curl ca-certificates
        log "installing the Rust toolchain with rustup"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy
        . "$HOME/.cargo/env"
    fi
    local have
    have="$(rustc --version | awk '{print $2}')"
    if [ "$(printf '%s\n%s\n' "$NEO_MIN_RUST" "$have" | sort -V | head -1)" != "$NEO_MIN_RUST" ]; then
        echo "rustc $have is older than $NEO_MIN_RUST; run 'rustup update stable'" >&2
        exit 1
    fi
}

# Build dependencies of the full feature set (grows as backends land).
NEO_BUILD_PKGS=(gcc libc6-dev pkg-config clang llvm libbpf-dev libclang-dev libdpdk-dev libisal-dev cmake)
# Tools the tests and `neo doctor` use.
NEO_TEST_PKGS=(iproute2 ethtool procps nftables sockperf kcat python3 python3-venv
    qemu-system-x86 busybox-static cpio kmod xz-utils rdma-core ibverbs-providers ibverbs-utils perftest
    valgrind openssl curl prometheus systemd buildah debootstrap nats-server)
