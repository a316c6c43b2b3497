"""
prepare: in each running guest, what it needs to run at its destination, installed at
native speed and harmless where it runs now: for KVM a kernel, grub-pc, lvm2 and an
initramfs with virtio (``tasks/destinations/kvm.py``); for a rehome the modules of the new
dom0's kernel, every run (``tasks/destinations/dom0.py``).
"""

from tasks.move import moves

for move in moves("guest"):
    move.to.prepare(move)
