#!/usr/bin/env bash
# Builds the Neo container image without pulling a base image: a Debian 12
# rootfs by debootstrap (minbase + the packages behind every library the
# binary links + what it loads at run time), cached under .cache/container
# by its package list, then `buildah bud` with deploy/container/Containerfile.
# Checks the image: `neo --version` and `neo doctor` run inside it.
#
#   deploy/container/build.sh [path/to/neo] [tag]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
neo="$(realpath "${1:-$root/target/release/neo}")"
tag="${2:-localhost/neo:$("$neo" --version | awk '{print $2}')}"
cache="$root/.cache/container"
mkdir -p "$cache"

# Packages owning the linked libraries (usrmerge: try /usr too).
pkgs=()
while read -r lib; do
    [ -n "$lib" ] || continue
    p="$(dpkg -S "$lib" 2>/dev/null || dpkg -S "/usr$lib" 2>/dev/null || true)"
    [ -n "$p" ] || { echo "build.sh: no Debian package owns $lib" >&2; exit 1; }
    pkgs+=("${p%%:*}")
done < <(ldd "$neo" | awk '/=> \// {print $3}')
# Loaded at run time: verbs and rdma_cm with their providers (rxe, mlx5,
# ...), DPDK's bus, mempool and NIC drivers (SR-IOV VFs and virtual devices).
pkgs+=(libibverbs1 librdmacm1 ibverbs-providers librte-bus-pci23 librte-bus-vdev23
    librte-mempool-ring23 librte-net-iavf23 librte-net-ice23 librte-net-i40e23
    librte-net-mlx5-23 librte-net-af-packet23 librte-net-tap23 ca-certificates
    iproute2)  # `ip`: the SR-IOV/RDMA manifests find the fast interface's address
list="$(printf '%s\n' "${pkgs[@]}" | sort -u | tr '\n' ',' | sed 's/,$//')"
key="$(printf '%s' "$list" | sha256sum | cut -c1-16)"
rootfs="$cache/rootfs-$key.tar.gz"
if [ ! -f "$rootfs" ]; then
    echo "build.sh: debootstrap bookworm (minbase + $list)" >&2
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    mirror="$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)"
    debootstrap --variant=minbase --include="$list" bookworm "$tmp/rootfs" "${mirror:-http://deb.debian.org/debian}" \
        >"$tmp/debootstrap.log" 2>&1 || { tail -20 "$tmp/debootstrap.log" >&2; exit 1; }
    rm -rf "$tmp/rootfs/var/cache/apt/archives/"*.deb "$tmp/rootfs/var/lib/apt/lists/"*
    tar -C "$tmp/rootfs" -czf "$rootfs.tmp" . && mv "$rootfs.tmp" "$rootfs"
    rm -rf "$tmp"
    trap - EXIT
fi
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
ln "$rootfs" "$ctx/rootfs.tar.gz" 2>/dev/null || cp "$rootfs" "$ctx/rootfs.tar.gz"
cp "$neo" "$ctx/neo"
export STORAGE_DRIVER="${STORAGE_DRIVER:-vfs}" BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"
buildah bud --quiet -t "$tag" -f "$here/Containerfile" "$ctx" >/dev/null
ctr="$(buildah from "$tag")"
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$ctx"' EXIT
version="$(buildah run "$ctr" -- neo --version)"
doctor="$(buildah run "$ctr" -- neo doctor 2>&1)" || { echo "$doctor" >&2; exit 1; }
user="$(buildah inspect --format '{{.OCIv1.Config.User}}' "$tag")"
size="$(buildah images --format '{{.Size}}' "$tag" | head -1)"
# The libraries loaded at run time are really there.
for want in "libibverbs.so.1 loads" "librte_eal.so.23 loads" "deflate: software (ISA-L igzip)"; do
    grep -qF "$want" <<<"$doctor" || { echo "$doctor" >&2; echo "build.sh: neo doctor in the image lacks: $want" >&2; exit 1; }
done
[ "$user" = 10001 ] || { echo "build.sh: the image runs as '$user', not 10001 (neo)" >&2; exit 1; }
# The broker serves from the image (chroot isolation shares the host's
# network): a record produced and read back through it.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
buildah run "$ctr" -- neo serve --no-admin --listen "127.0.0.1:$port" --data-dir /var/lib/neo/data >"$ctx/serve.log" 2>&1 &
srv=$!
for _ in $(seq 100); do grep -q "neo serving" "$ctx/serve.log" && break; sleep 0.1; done
ok=1
"$neo" topics create img -b "127.0.0.1:$port" >/dev/null && echo from-the-image | "$neo" produce img -b "127.0.0.1:$port" 2>/dev/null \
    && [ "$("$neo" consume img -b "127.0.0.1:$port" -c 1 2>/dev/null)" = from-the-image ] || ok=0
kill -TERM "$srv" 2>/dev/null; wait "$srv" 2>/dev/null || true
[ "$ok" = 1 ] || { cat "$ctx/serve.log" >&2; echo "build.sh: the image's broker did not serve" >&2; exit 1; }
buildah rmi --prune >/dev/null 2>&1 || true
echo "image $tag ($size, user $user): $version; its broker served a record"
grep -E '^  (rdma|dpdk|af-xdp|tcp) ' <<<"$doctor"
