"""
Fix a migrated guest's files in its new tree (mounted on the KVM host): the Xen console
gettys give way to a getty on the serial port, and grub goes onto the new disk.

The files xen2kvm writes whole (fstab, persistent-net rules, the grub drop-in) are put
with ``files.put`` and kept out of every rsync; these operations edit in place, so they
run again after each copy.
"""

from __future__ import annotations

import posixpath
import re
import shlex

from pyinfra import host
from pyinfra.api import OperationValueError, QuoteString, StringCommand, operation
from pyinfra.facts.files import File, FileContents, FindFiles, Link

XEN_CONSOLES = ("hvc0", "xvc0")
SERIAL_GETTY = "T0:23:respawn:/sbin/getty -L ttyS0 115200 vt100"
GETTY_WANTS = "etc/systemd/system/getty.target.wants"
SERIAL_UNIT = "/lib/systemd/system/serial-getty@.service"


def _check_root(root: str) -> None:
    if not root.startswith("/") or root.rstrip("/") in ("", "/"):
        raise OperationValueError(f"root must be the migrated guest's tree, not {root!r}")


def inittab_changes(lines: list[str]) -> tuple[list[int], bool]:
    """Line numbers (0-based) of Xen console gettys to comment out; whether ttyS0 is missing."""
    xen = [
        index
        for index, line in enumerate(lines)
        if not line.lstrip().startswith("#")
        and "getty" in line
        and any(re.search(rf"\b{console}\b", line) for console in XEN_CONSOLES)
    ]
    has_serial = any(
        not line.lstrip().startswith("#") and "getty" in line and re.search(r"\bttyS0\b", line)
        for line in lines
    )
    return xen, not has_serial


@operation()
def serial_console(root: str):
    """
    Replace the Xen console getty (``hvc0``/``xvc0``) with one on ``ttyS0``, for
    ``virsh console``: in ``/etc/inittab`` on sysvinit guests, as systemd units otherwise.

    + root: the migrated guest's tree on this host

    **Example:**

    .. code:: python

        guestfix.serial_console(root="/var/lib/xen2kvm/target/web1")
    """
    _check_root(root)
    inittab = posixpath.join(root, "etc/inittab")
    if host.get_fact(File, path=inittab):
        lines = host.get_fact(FileContents, path=inittab) or []
        xen, add_serial = inittab_changes(lines)
        if not xen and not add_serial:
            host.noop("inittab already has a ttyS0 getty and no Xen console getty")
            return
        for index in xen:
            yield StringCommand(
                "sed -i", QuoteString(f"{index + 1}s/^/#xen2kvm# /"), QuoteString(inittab)
            )
        if add_serial:
            yield StringCommand("echo", QuoteString(SERIAL_GETTY), ">>", QuoteString(inittab))
        return

    wants = posixpath.join(root, GETTY_WANTS)
    changes = False
    for console in XEN_CONSOLES:
        path = posixpath.join(wants, f"serial-getty@{console}.service")
        if host.get_fact(Link, path=path):
            changes = True
            yield StringCommand("rm -f", QuoteString(path))
    serial = posixpath.join(wants, "serial-getty@ttyS0.service")
    if not host.get_fact(Link, path=serial):
        changes = True
        yield StringCommand("mkdir -p", QuoteString(wants))
        yield StringCommand("ln -sf", QuoteString(SERIAL_UNIT), QuoteString(serial))
    if not changes:
        host.noop("serial-getty@ttyS0 is already enabled and no Xen console getty is")


def grub_is_current(kernels: list[str], grub_cfg: list[str] | None, core: bool) -> bool:
    """grub is on the disk (its core image is there) and its menu lists every kernel."""
    if not core or grub_cfg is None:
        return False
    text = "\n".join(grub_cfg)
    return all(posixpath.basename(kernel) in text for kernel in kernels)


@operation()
def bootloader(root: str, disk: str, target: str = "i386-pc"):
    """
    Install grub on the migrated guest's new disk and write its menu, from inside its tree
    (``chroot`` with ``/dev``, ``/proc``, ``/sys`` and ``/run`` bound in). Runs again when a
    kernel was added to the tree since (a later copy brought a new one).

    + root: the migrated guest's tree on this host, with its /boot mounted
    + disk: the whole new disk (the host LV), where grub's boot code goes
    + target: grub's platform

    **Example:**

    .. code:: python

        guestfix.bootloader(root="/var/lib/xen2kvm/target/web1", disk="/dev/vg0/web1")
    """
    _check_root(root)
    if not disk.startswith("/dev/"):
        raise OperationValueError(f"disk must be a device path, not {disk!r}")
    boot = posixpath.join(root, "boot")
    kernels = host.get_fact(FindFiles, path=boot, fname="vmlinuz-*", maxdepth=1) or []
    if not kernels and host.state.is_executing:
        raise OperationValueError(
            f"no kernel in {boot}: install one in the guest first (the prepare phase)"
        )
    grub_cfg = host.get_fact(FileContents, path=posixpath.join(boot, "grub/grub.cfg"))
    core = bool(host.get_fact(File, path=posixpath.join(boot, f"grub/{target}/core.img")))
    if grub_is_current(kernels, grub_cfg, core):
        host.noop(f"grub is already on {disk} and lists every kernel in {boot}")
        return
    # The values go in as shell variables, so the trap's own quoting holds whatever they are.
    script = (
        f"T={shlex.quote(root)}; D={shlex.quote(disk)}; G={shlex.quote(target)}; "
        "trap 'for d in run sys proc dev; do umount \"$T/$d\" 2>/dev/null; done' EXIT; "
        'for d in dev proc sys run; do mount --bind "/$d" "$T/$d" || exit 1; done; '
        'chroot "$T" grub-install --target="$G" "$D" && chroot "$T" update-grub'
    )
    yield StringCommand("sh -c", QuoteString(script))
