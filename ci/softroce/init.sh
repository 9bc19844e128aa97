#!/bin/sh
# The guest's /init (dash): modules, an rxe device on a dummy interface, the
# host's tree over 9p at the same path, then the script named on the kernel
# command line. Its status leaves through the isa-debug-exit port.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mkdir -p /dev/pts /tmp && mount -t tmpfs tmp /tmp
exit_with() {
    # Byte `code` to port 0xf4: qemu exits with (code << 1) | 1.
    printf "\\$(printf '%03o' "$1")" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
    poweroff -f
}
for m in $(cat /lib/modules/order); do
    insmod "/lib/modules/$m" 2>/dev/null || { echo "softroce-guest: insmod $m failed"; exit_with 90; }
done
root=$(sed -n 's/.*neo_root=\([^ ]*\).*/\1/p' /proc/cmdline)
script=$(sed -n 's/.*neo_script=\([^ ]*\).*/\1/p' /proc/cmdline)
mkdir -p "$root"
mount -t 9p -o trans=virtio,version=9p2000.L,ro neo "$root" || { echo "softroce-guest: 9p mount failed"; exit_with 91; }
# The dummy module makes dummy0 itself (numdummies=1); add it if not.
ip link show dummy0 >/dev/null 2>&1 || ip link add dummy0 type dummy
ip addr add 10.99.0.1/24 dev dummy0 && ip link set dummy0 up && ip link set lo up ||
    { echo "softroce-guest: dummy0 setup failed"; exit_with 93; }
rdma link add rxe0 type rxe netdev dummy0 || { echo "softroce-guest: rdma link add failed"; exit_with 92; }
echo "softroce-guest: kernel $(uname -r), rxe device rxe0 on dummy0 (10.99.0.1), $(ibv_devices | tail -n +3 | wc -l) verbs device(s)"
cd "$root"
sh "$script"
status=$?
echo "softroce-guest: script exited $status"
exit_with "$status"
