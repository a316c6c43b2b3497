#!/bin/sh
# xen2kvm lab: LAB-ONLY. Start the outer libvirtd in the mount namespace made for it by
#   ip netns exec <prefix>-net unshare --mount --propagation private sh outer-libvirtd.sh BASE
# Every mount below is private to that namespace and vanishes with libvirtd: the host's
# /etc/libvirt, /var/lib/libvirt, /run and /dev are never written.
set -eu
B=$1
mount --bind "$B/etc" /etc/libvirt
mount --bind "$B/lib" /var/lib/libvirt
mount --bind "$B/cache" /var/cache/libvirt
mount --bind "$B/log" /var/log/libvirt
mount --bind "$B/run" /run
# A private /dev with the nodes libvirtd and qemu need; the hook adds loop devices as
# /dev/<vg>/<lv> here, so nothing appears in the host's /dev.
mount -t tmpfs -o mode=755,size=8m x2k-dev /dev
mknod -m 666 /dev/null c 1 3
mknod -m 666 /dev/zero c 1 5
mknod -m 666 /dev/full c 1 7
mknod -m 666 /dev/random c 1 8
mknod -m 666 /dev/urandom c 1 9
mknod -m 666 /dev/tty c 5 0
mknod -m 660 /dev/loop-control c 10 237
mkdir /dev/net /dev/pts /dev/shm
mknod -m 666 /dev/net/tun c 10 200
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts /dev/pts
ln -s pts/ptmx /dev/ptmx
mount -t tmpfs -o mode=1777,size=64m shm /dev/shm
ln -s /proc/self/fd /dev/fd
ln -s /proc/self/fd/0 /dev/stdin
ln -s /proc/self/fd/1 /dev/stdout
ln -s /proc/self/fd/2 /dev/stderr
mkdir -p /run/lock /run/libvirt
exec /usr/sbin/libvirtd --listen --config /etc/libvirt/libvirtd.conf
