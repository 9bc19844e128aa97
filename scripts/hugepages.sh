#!/usr/bin/env bash
# Reserves 2 MiB hugepages for DPDK and mounts hugetlbfs, when it can; else
# says why and that Neo's DPDK transport runs with --no-huge (the default,
# slower: no physically contiguous memory, no PCI DMA).
#
#   scripts/hugepages.sh [PAGES]      (default 512 = 1 GiB)
# Then run with `--dpdk-hugepages`.
set -euo pipefail
pages="${1:-512}"
mnt=/dev/hugepages
fallback() { echo "hugepages: $1; DPDK will run with --no-huge (omit --dpdk-hugepages)" >&2; exit 0; }

[ "$(id -u)" = 0 ] || fallback "need root to reserve hugepages"
[ -w /proc/sys/vm/nr_hugepages ] || fallback "/proc/sys/vm/nr_hugepages is not writable (container?)"
have="$(cat /proc/sys/vm/nr_hugepages)"
if [ "$have" -lt "$pages" ]; then
    echo "$pages" >/proc/sys/vm/nr_hugepages || fallback "the kernel refused to reserve $pages pages"
fi
got="$(cat /proc/sys/vm/nr_hugepages)"
[ "$got" -gt 0 ] || fallback "no hugepages could be reserved (memory fragmented?)"
[ "$got" -ge "$pages" ] || echo "hugepages: only $got of $pages pages reserved" >&2
if ! grep -qs " $mnt hugetlbfs " /proc/mounts; then
    mkdir -p "$mnt"
    mount -t hugetlbfs nodev "$mnt" || fallback "cannot mount hugetlbfs at $mnt"
fi
echo "hugepages: $got x 2 MiB reserved ($(grep HugePages_Free /proc/meminfo | awk '{print $2}') free), hugetlbfs at $mnt"
echo "run neo with --dpdk-hugepages; DPDK unlinks its hugepage files (--huge-unlink), so they are freed on exit"
