"""What a migrated guest's boot menu lists (pure: no pyinfra): the kernels of its /boot,
newest first in Debian's version order, and checks that every value the menu carries is
plain (it is rendered by ``render.grub_cfg`` from ``templates/grub.cfg.j2``).

Kernel file names come from the guest: a name with anything but plain release characters
is left out of the menu rather than written into it.
"""

from __future__ import annotations

import posixpath
import re

KERNEL_RELEASE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]*")
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DEVICE = re.compile(r"/dev/[A-Za-z0-9/_.:+=-]+")
OPTION = re.compile(r"[A-Za-z0-9_.,:=/+-]+")


def boot_kernels(vmlinuz: list[str], initrds: list[str]) -> list[tuple[str, bool]]:
    """(release, has an initrd) for the kernels of a /boot, given the file names (or
    paths) of its ``vmlinuz-*`` and ``initrd.img-*``, newest first. Left out: names with
    anything but plain release characters, and what update-grub leaves out itself
    (grub-mkconfig's ``grub_file_is_not_garbage``: ``*.dpkg-*``, ``*.rpmsave``,
    ``*.rpmnew``)."""
    with_initrd = {_release(name, "initrd.img-") for name in initrds}
    releases = {_release(name, "vmlinuz-") for name in vmlinuz}
    kept = [
        release
        for release in releases
        if KERNEL_RELEASE.fullmatch(release)
        and ".dpkg-" not in release
        and not release.endswith((".rpmsave", ".rpmnew"))
    ]
    kept.sort(key=debian_version_key, reverse=True)
    return [(release, release in with_initrd) for release in kept]


def check_menu(
    kernels: list[tuple[str, bool]], boot_uuid: str, root_device: str, cmdline: str
) -> None:
    """ValueError for a value the menu cannot carry as it is."""
    if not isinstance(boot_uuid, str) or not UUID.fullmatch(boot_uuid):
        raise ValueError(f"not a filesystem UUID (lower case): {boot_uuid!r}")
    if not isinstance(root_device, str) or not DEVICE.fullmatch(root_device):
        raise ValueError(f"not a plain device path: {root_device!r}")
    if not isinstance(cmdline, str) or (
        cmdline and not all(OPTION.fullmatch(word) for word in cmdline.split(" "))
    ):
        raise ValueError(f"not plain kernel options, one space apart: {cmdline!r}")
    for release, _initrd in kernels:
        if not KERNEL_RELEASE.fullmatch(release):
            raise ValueError(f"not a plain kernel release: {release!r}")


def _release(name: str, prefix: str) -> str:
    base = posixpath.basename(name)
    return base[len(prefix) :] if base.startswith(prefix) else ""


def debian_version_key(version: str) -> tuple:
    """A sort key in dpkg's version order (``6.1.0-9`` < ``6.1.0-10``, ``1.0~rc1`` < ``1.0``):
    the part before the last ``-`` first, then the part after it (a kernel release has no
    epoch)."""
    upstream, _, revision = version.rpartition("-") if "-" in version else (version, "", "")
    return (_part_key(upstream), _part_key(revision))


def _part_key(text: str) -> tuple:
    parts = []
    for letters, number in re.findall(r"(\D*)(\d*)", text):
        if letters or number:
            parts.append(((*(_order(char) for char in letters), 0), int(number or 0)))
    parts.append(((0,), 0))  # the end: after "~", before anything else
    return tuple(parts)


def _order(char: str) -> int:
    # dpkg's order of non-digits: "~" first (before the end of the string), then letters,
    # then everything else.
    if char == "~":
        return -1
    if char.isalpha():
        return ord(char)
    return ord(char) + 256
