"""
Wait until udev, and the LVM activations it starts, are done with a host's block devices.

On Debian 12 and later, lvm2's udev rules (``69-dm-lvm.rules``) autoactivate a VG as soon
as its last PV appears: ``kpartx -a`` on a matryoshka disk makes udev start a transient
``lvm-activate-<vg>`` unit a moment later. Unless that is over, it can activate the guest
VG again right after ``vgchange -an``, and ``kpartx -d`` then fails (the VG holds the
mapping). ``disk.partition_mappings`` waits after mapping and ``lvm.volume_group_active``
before deactivating, so neither ever races udev, on any ``lvm.conf``.
"""

from __future__ import annotations

from pyinfra.api import StringCommand

SETTLE_TIMEOUT = 120  # seconds, for each of the two waits

# Running or queued event activations (systemd only; without systemd, lvm's rules run
# vgchange inside udev itself and ``udevadm settle`` covers them).
_ACTIVATING = (
    "while { systemctl list-jobs --no-legend 'lvm-activate-*'; "
    "systemctl list-units --no-legend --plain --state=activating,active 'lvm-activate-*'; "
    "} 2>/dev/null | grep -q .; do sleep 0.5; done"
)


def settled(timeout: int = SETTLE_TIMEOUT) -> StringCommand:
    """The command that waits (at most ``timeout`` seconds for udev's queue, then as long
    for LVM's event activations) and fails, saying so, if either is still busy."""
    return StringCommand(
        f"udevadm settle --timeout={timeout} && timeout {timeout} sh -c",
        f'"{_ACTIVATING}"',
        f"|| {{ echo 'udev or LVM autoactivation still busy after {timeout}s' >&2; false; }}",
    )
