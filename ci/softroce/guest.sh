#!/usr/bin/env bash
# Soft-RoCE in a qemu guest: Debian's own kernel (which has rdma_rxe; this
# host's kernel has no InfiniBand at all), rdma-core with the rxe provider and
# busybox in an initramfs, cached under .cache/softroce. The guest creates an
# rxe device on a dummy interface and runs a script from the host's tree,
# which it sees at the same path over 9p; its output comes back on the serial
# console and its exit status through qemu's isa-debug-exit device.
#
#   ci/softroce/guest.sh build            # build (or reuse) the cached guest
#   ci/softroce/guest.sh run SCRIPT [BIN...]  # boot it and run SCRIPT (sh) inside;
#                                         # the shared libraries of each BIN go in too
#
# Needs: qemu-system-x86 busybox-static cpio kmod iproute2 rdma-core
# ibverbs-providers ibverbs-utils perftest (scripts/lib.sh installs them).
# The guest has no network device to the host (-nic none): nothing leaves it.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache="${NEO_SOFTROCE_CACHE:-$root/.cache/softroce}"
mkdir -p "$cache"

# Modules the guest loads, dependency closure resolved with modprobe.
MODULES=(crc32_generic rdma_rxe rdma_ucm ib_uverbs dummy virtio_pci 9pnet_virtio 9p)
# Host binaries copied into the guest with their shared libraries.
TOOLS=(/usr/bin/rdma /usr/sbin/ip /usr/bin/ibv_devinfo /usr/bin/ibv_devices /usr/bin/ib_send_lat
       /usr/bin/ibv_rc_pingpong /usr/bin/timeout /bin/dash /usr/bin/kcat)

log() { printf '==> softroce: %s\n' "$*" >&2; }

kernel_pkg() {
    # The exact image package linux-image-amd64 points to (pinned once cached).
    apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'
}

# What the cached guest was built from: these scripts (the kernel package is
# pinned by the cache itself until the scripts change).
recipe() { cat "$here/guest.sh" "$here/init.sh" | sha256sum | cut -c1-16; }

build() {
    if [ -f "$cache/ready" ] && grep -q "recipe $(recipe)" "$cache/ready"; then
        return 0
    fi
    local pkg kdir kver
    pkg="$(kernel_pkg)"
    [ -n "$pkg" ] || { echo "softroce: cannot find the kernel package linux-image-amd64 depends on (apt-get update?)" >&2; exit 1; }
    log "building the guest from $pkg (cached in $cache)"
    kdir="$cache/kernel"
    rm -rf "$kdir" && mkdir -p "$kdir"
    (cd "$cache" && rm -f ./*.deb && apt-get download -q -o APT::Sandbox::User=root "$pkg" >/dev/null)
    dpkg-deb --fsys-tarfile "$cache"/"$pkg"_*.deb | tar -x -C "$kdir" ./boot ./lib/modules
    rm -f "$cache"/*.deb
    kver="$(ls "$kdir/lib/modules")"
    depmod -b "$kdir" "$kver"
    # Boot the uncompressed ELF through its PVH entry: ~3 s faster under TCG.
    local vmlinuz="$kdir/boot/vmlinuz-$kver" off
    rm -f "$cache/vmlinux" "$cache/vmlinuz"
    off="$(LC_ALL=C grep -abo "$(printf '\3757zXZ')" "$vmlinuz" | head -1 | cut -d: -f1 || true)"
    if [ -n "$off" ]; then
        tail -c +"$((off + 1))" "$vmlinuz" | xz -dcq >"$cache/vmlinux" 2>/dev/null || true
    fi
    if [ "$(head -c 4 "$cache/vmlinux" 2>/dev/null | od -An -tx1 | tr -d ' ')" = 7f454c46 ]; then
        log "kernel: ELF vmlinux extracted (PVH boot)"
    else
        rm -f "$cache/vmlinux"
        cp "$vmlinuz" "$cache/vmlinuz"
        log "kernel: vmlinuz (bzImage boot)"
    fi
    echo "$kver" >"$cache/kver"

    local r="$cache/initramfs"
    rm -rf "$r" && mkdir -p "$r"/{bin,sbin,etc,proc,sys,dev,tmp,run,mnt,lib/modules,etc/libibverbs.d}
    # busybox for the small tools; dash as /bin/sh (busybox sh would prefer its
    # own `ip` applet over iproute2's, which rdma needs).
    cp /bin/busybox "$r/bin/busybox"
    for a in mount umount insmod mkdir cat echo sleep dd ls sync poweroff uname grep sed awk head tail wc seq env true false printf rm cp chmod ln ps kill tee cut tr sort uniq cmp; do
        ln -sf busybox "$r/bin/$a"
    done
    local mods=() m
    for m in "${MODULES[@]}"; do
        while read -r _ path _; do
            [ -n "$path" ] && mods+=("$path")
        done < <(modprobe -d "$kdir" -S "$kver" --show-depends --ignore-install "$m" | grep '^insmod')
    done
    : >"$r/lib/modules/order"
    local seen=" " p base
    for p in "${mods[@]}"; do
        case "$seen" in *" $p "*) continue ;; esac
        seen="$seen$p "
        base="$(basename "$p")"
        case "$p" in
            *.xz) xz -dc "$p" >"$r/lib/modules/${base%.xz}"; base="${base%.xz}" ;;
            *.zst) zstd -dqc "$p" >"$r/lib/modules/${base%.zst}"; base="${base%.zst}" ;;
            *) cp "$p" "$r/lib/modules/$base" ;;
        esac
        echo "$base" >>"$r/lib/modules/order"
    done
    # Tools, their libraries, the rxe provider, and what glibc dlopens.
    local f lib
    for f in "${TOOLS[@]}" /usr/lib/x86_64-linux-gnu/libibverbs/librxe-rdmav*.so \
             /usr/lib/x86_64-linux-gnu/librdmacm.so.1 /usr/lib/x86_64-linux-gnu/libibverbs.so.1 \
             /lib/x86_64-linux-gnu/libgcc_s.so.1; do
        for lib in "$f" $(ldd "$f" 2>/dev/null | grep -o '/[^ ]*' || true); do
            [ -e "$lib" ] || continue
            mkdir -p "$r$(dirname "$lib")"
            cp -L "$lib" "$r$lib"
        done
    done
    cp /etc/libibverbs.d/rxe.driver "$r/etc/libibverbs.d/"
    ln -sf /bin/dash "$r/bin/sh"
    cp "$here/init.sh" "$r/init"
    chmod +x "$r/init"
    (cd "$r" && find . | cpio -o -H newc --quiet) >"$cache/base.cpio"
    rm -rf "$kdir/lib/modules" "$r"   # ~440 MB of modules, not needed once packed
    printf '%s recipe %s\n' "$pkg" "$(recipe)" >"$cache/ready"
    log "guest ready: $(cut -d' ' -f1 "$cache/ready"), initramfs $(du -h "$cache/base.cpio" | cut -f1)"
}

run() {
    local script; script="$(realpath "$1")"
    shift
    build
    # The libraries of the binaries the script runs (they come over 9p) ride
    # in a small second archive; the kernel merges concatenated archives.
    local extra="$cache/run-extra" lib
    rm -rf "$extra" && mkdir -p "$extra"
    for bin in "$@"; do
        for lib in $(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*' || true); do
            [ -e "$lib" ] || continue
            mkdir -p "$extra$(dirname "$lib")"
            cp -L "$lib" "$extra$lib"
        done
    done
    (cd "$extra" && find . | cpio -o -H newc --quiet) >"$cache/run-extra.cpio"
    cat "$cache/base.cpio" "$cache/run-extra.cpio" >"$cache/run.cpio"
    local out="$cache/run.out" kernel
    if [ -f "$cache/vmlinux" ]; then kernel=(-kernel "$cache/vmlinux" -bios /usr/share/qemu/qboot.rom); else kernel=(-kernel "$cache/vmlinuz"); fi
    log "booting $(cut -d' ' -f1 "$cache/ready") under TCG (emulated CPU), running $script"
    local rc=0
    timeout "${NEO_SOFTROCE_TIMEOUT:-600}" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m 1G \
        -nographic -no-reboot -nic none "${kernel[@]}" -initrd "$cache/run.cpio" \
        -append "console=ttyS0 quiet panic=-1 neo_root=$root neo_script=$script" \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        -virtfs "local,path=$root,mount_tag=neo,security_model=none,readonly=on" </dev/null | tee "$out" || rc=$?
    # isa-debug-exit: qemu exits with (code << 1) | 1; code 0 means the script passed.
    if [ "$rc" -eq 1 ]; then return 0; fi
    if [ "$rc" -eq 124 ]; then echo "softroce: the guest timed out" >&2; return 1; fi
    echo "softroce: the guest script failed (qemu exit $rc, script status $(((rc - 1) / 2)))" >&2
    return 1
}

case "${1:-}" in
    build) build ;;
    run) shift; run "$@" ;;
    *) echo "usage: $0 build | run SCRIPT" >&2; exit 2 ;;
esac
