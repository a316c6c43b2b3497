"""
Fix a migrated guest's files in its new tree (mounted on the KVM host): the files xen2kvm
writes whole (fstab, persistent-net rules, the grub drop-in), the Xen console gettys that
give way to a getty on the serial port, and grub on the new disk.

Everything in the tree came from the guest, which may be hostile: a symbolic link it
planted (``/etc/udev/rules.d -> /etc``) would take a write out of the tree and onto the
host, and a program of its own run by the host (its ``grub-install`` in a chroot) could
escape through ``/proc``. So every write here first checks, without following links,
that no component of its path below the tree's root is a link (``facts.tree``), and no
program of the guest ever runs: grub is installed with the KVM host's own grub tools, and
its menu is rendered by xen2kvm (``templates/grub.cfg.j2``).

The whole files are kept out of every rsync; the edits in place run again after each copy.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Generator
from io import StringIO

from pyinfra import host
from pyinfra.api import (
    FileUploadCommand,
    OperationError,
    OperationValueError,
    QuoteString,
    StringCommand,
    operation,
)
from pyinfra.facts.files import File, FileContents, FindFiles, Link, Sha1File
from pyinfra.facts.server import Which

from facts.disk import GrubBootCode
from facts.tree import where
from operations.util.checks import check_bool
from operations.util.facts import fact
from operations.util.tree import checked, relative
from xen2kvm import bootmenu, render

XEN_CONSOLES = ("hvc0", "xvc0")
SERIAL_GETTY = "T0:23:respawn:/sbin/getty -L ttyS0 115200 vt100"
GETTY_WANTS = "/etc/systemd/system/getty.target.wants"
SERIAL_UNIT = "/lib/systemd/system/serial-getty@.service"
GRUB_TARGETS = ("i386-pc",)  # the new disk has an MBR table: BIOS boot


def _check_root(root: str) -> None:
    if not isinstance(root, str) or not root.startswith("/") or root.rstrip("/") in ("", "/"):
        raise OperationValueError(f"root must be the migrated guest's tree, not {root!r}")


def sha1(content: str) -> str:
    return hashlib.sha1(content.encode(), usedforsecurity=False).hexdigest()


def _install(dest: str, content: str, mode: str) -> Generator:
    """Upload ``content`` to a temporary file of this host (outside the tree), then
    ``install`` it as ``dest`` (which unlinks, never follows, what is there)."""
    temp = host.get_temp_filename(f"xen2kvm-tree-file {dest} {sha1(content)}")
    yield FileUploadCommand(StringIO(content), temp)
    yield StringCommand(
        "mkdir -p",
        QuoteString(posixpath.dirname(dest)),
        "&& install -m",
        QuoteString(mode),
        "-T",
        QuoteString(temp),
        QuoteString(dest),
        "&& rm -f",
        QuoteString(temp),
    )


# Whole files -------------------------------------------------------------------------


@operation()
def tree_file(root: str, path: str, content: str = "", mode: str = "0644", present: bool = True):
    """
    Write a whole file in a migrated guest's tree (or remove it), never through a link:
    a component of its path that is a symbolic link (or the file itself being one) is
    refused.

    + root: the migrated guest's tree on this host
    + path: the file as the guest sees it (``/etc/fstab``); missing directories are made
    + content: what the file holds
    + mode: its permissions (``0644``); set whenever it is written
    + present: ``False`` removes it

    **Example:**

    .. code:: python

        guestfix.tree_file(
            name="fstab of web1",
            root="/var/lib/xen2kvm/target/web1",
            path="/etc/fstab",
            content=render.fstab(plan, entries),
        )
    """
    _check_root(root)
    name = relative(path)
    if not isinstance(content, str):
        raise OperationValueError(f"content must be text, not {type(content).__name__}")
    if not isinstance(mode, str) or not re.fullmatch(r"0?[0-7]{3}", mode):
        raise OperationValueError(f"mode must be permissions like 0644, not {mode!r}")
    check_bool("present", present)

    kinds = checked(root, path, ("file",))
    dest = where(root, name)
    exists = kinds.get(name) == "file"
    if not present:
        if not exists:
            host.noop(f"{dest} is already absent")
            return
        yield StringCommand("rm -f", QuoteString(dest))
        return
    if exists:
        info = fact(host, File, path=dest) or {}
        same = fact(host, Sha1File, path=dest) == sha1(content)
        if same and info.get("mode") == int(mode):
            host.noop(f"{dest} already holds what xen2kvm writes there (mode {mode})")
            return
    yield from _install(dest, content, mode)


# Serial console ----------------------------------------------------------------------


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
    Refused when a directory on the way (or ``/etc/inittab`` itself) is a symbolic link.

    + root: the migrated guest's tree on this host

    **Example:**

    .. code:: python

        guestfix.serial_console(root="/var/lib/xen2kvm/target/web1")
    """
    _check_root(root)
    kinds = checked(root, "/etc/inittab", ("file",))
    if kinds.get("etc/inittab") == "file":
        inittab = where(root, "etc/inittab")
        lines = fact(host, FileContents, path=inittab) or []
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

    checked(root, GETTY_WANTS, ("directory",))
    wants = where(root, relative(GETTY_WANTS))
    changes = False
    for console in XEN_CONSOLES:
        path = posixpath.join(wants, f"serial-getty@{console}.service")
        if fact(host, Link, path=path):
            changes = True
            yield StringCommand("rm -f", QuoteString(path))
    serial = posixpath.join(wants, "serial-getty@ttyS0.service")
    if not fact(host, Link, path=serial):
        changes = True
        yield StringCommand("mkdir -p", QuoteString(wants))
        yield StringCommand("ln -sfT", QuoteString(SERIAL_UNIT), QuoteString(serial))
    if not changes:
        host.noop("serial-getty@ttyS0 is already enabled and no Xen console getty is")


# Boot loader -------------------------------------------------------------------------


@operation()
def bootloader(
    root: str,
    disk: str,
    boot_uuid: str,
    root_device: str,
    cmdline: str = "",
    serial_console: bool = False,
    target: str = "i386-pc",
):
    """
    Put grub on the migrated guest's new disk with this host's own grub tools (no chroot,
    no program of the guest), and write its menu: one entry per kernel in the tree's
    ``/boot``, newest first. Runs again when the menu differs (a later copy brought a new
    kernel) or the boot code is missing. The guest's own ``update-grub`` rewrites the
    menu at its next kernel upgrade, under KVM. The boot code is looked for where the
    BIOS reads it (the disk's first sector) as well as in ``/boot/grub``: a disk whose
    first sector was overwritten gets it again.

    + root: the migrated guest's tree on this host, with its ``/boot`` mounted
    + disk: the whole new disk (the host LV), where grub's boot code goes
    + boot_uuid: the filesystem UUID of the new ``/boot`` (where grub finds the kernels)
    + root_device: the guest's root filesystem as its kernel sees it (``root=``)
    + cmdline: the other kernel options (``net.ifnames=0 console=ttyS0,115200n8``)
    + serial_console: whether grub's menu shows on the serial port too
    + target: grub's platform (``i386-pc``: the new disk has an MBR table)

    This host needs grub for ``target`` (Debian: ``grub-pc-bin`` and ``grub2-common``;
    not ``grub-pc``, which would manage this host's own boot loader).

    **Example:**

    .. code:: python

        guestfix.bootloader(
            root="/var/lib/xen2kvm/target/web1",
            disk="/dev/vg0/web1",
            boot_uuid=plan.boot_uuid,
            root_device=render.root_device(plan),
            cmdline=render.kernel_cmdline(plan),
            serial_console=plan.domain.serial_console,
        )
    """
    _check_root(root)
    if not isinstance(disk, str) or not disk.startswith("/dev/") or "\n" in disk:
        raise OperationValueError(f"disk must be a device path, not {disk!r}")
    if target not in GRUB_TARGETS:
        raise OperationValueError(f"target must be one of {', '.join(GRUB_TARGETS)}: {target!r}")
    try:
        bootmenu.check_menu([], boot_uuid, root_device, cmdline)
    except ValueError as exc:
        raise OperationValueError(str(exc)) from None

    modules = f"/usr/lib/grub/{target}"
    if not fact(host, Which, command="grub-install") or not fact(
        host, File, path=f"{modules}/modinfo.sh"
    ):
        raise OperationError(
            f"{host.name} has no grub for {target} (grub-install and {modules}): install "
            "grub-pc-bin and grub2-common there (not grub-pc, which would manage this "
            "host's own boot loader)"
        )
    checked(root, f"/boot/grub/{target}/core.img", ("file",))
    checked(root, "/boot/grub/grub.cfg", ("file",))
    boot = where(root, "boot")
    kernels = bootmenu.boot_kernels(
        fact(host, FindFiles, path=boot, fname="vmlinuz-*", maxdepth=1) or [],
        fact(host, FindFiles, path=boot, fname="initrd.img-*", maxdepth=1) or [],
    )
    if not kernels and host.state.is_executing:
        raise OperationValueError(
            f"no kernel in {boot}: install one in the guest first (the prepare phase)"
        )
    menu = render.grub_cfg(kernels, boot_uuid, root_device, cmdline, serial_console)
    grub_cfg = where(root, "boot/grub/grub.cfg")
    core = fact(host, File, path=where(root, f"boot/grub/{target}/core.img"))
    boot_code = fact(host, GrubBootCode, device=disk)
    current = fact(host, FileContents, path=grub_cfg)
    if core and boot_code and current == menu.splitlines():
        host.noop(f"grub is already on {disk} and its menu lists every kernel in {boot}")
        return
    yield StringCommand(
        "grub-install",
        QuoteString(f"--target={target}"),
        QuoteString(f"--boot-directory={boot}"),
        QuoteString(disk),
    )
    yield from _install(grub_cfg, menu, "0644")
