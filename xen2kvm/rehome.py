"""Rehoming a guest onto another dom0, staying on Xen (pure: no pyinfra).

The field report's second part: 32-bit domUs move from an old dom0 to a new 64-bit dom0
by copying their LVs, and run there with the new dom0's 64-bit kernel and initrd. Their
Xen config on the new dom0 is the old one with the disks pointing at the new LVs and the
kernel and ramdisk set to the dom0's running kernel.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping

from .errors import PlanError, Xen2KvmError
from .guestkinds import rehome_boot_problem, xen_boot
from .xenconfig import XenDomain, parse_xen_config

_KERNEL_LINE = re.compile(r"^\s*(kernel|ramdisk|bootloader)\s*=", re.MULTILINE)
# What ``uname -r`` prints for a Debian kernel: 6.1.0-35-amd64, 2.6.26-2-xen-amd64.
RELEASE_RE = re.compile(r"^[0-9][A-Za-z0-9.+~_-]*$")


class RehomeError(Xen2KvmError):
    """A guest's Xen config cannot be rehomed as it is."""


def check_release(release: object) -> str:
    """``release`` if it is a kernel release as ``uname -r`` prints it (ValueError if not)."""
    if not isinstance(release, str) or not RELEASE_RE.match(release):
        raise ValueError(f"{release!r} is not a kernel release (as uname -r prints it)")
    return release


def target_device(source_device: str, vg: str | None) -> str:
    """The LV on the new dom0 for one on the old: same name, in ``vg`` when given (else
    at the same path: LVs the new dom0's admin made beforehand)."""
    if vg is None:
        return source_device
    return f"/dev/{vg}/{posixpath.basename(source_device)}"


def kernel_paths(release: str) -> tuple[str, str]:
    """A Debian dom0's kernel and initrd for ``release`` (what xen-tools configs name)."""
    return f"/boot/vmlinuz-{release}", f"/boot/initrd.img-{release}"


def check_rehomable(guest: str, domain: XenDomain) -> None:
    """Refuse (``PlanError``) a guest that cannot be rehomed as its config is, while
    planning: one that boots its own kernel (``guestkinds.rehome_boot_problem``)."""
    problem = rehome_boot_problem(xen_boot(domain))
    if problem:
        raise PlanError(guest, "rehome_to", f"{domain.filename}: {problem}")


def rehome_config(text: str, release: str, devices: Mapping[str, str], source: str) -> str:
    """The guest's Xen config for the new dom0, from its config on the old one.

    ``kernel`` and ``ramdisk`` name the new dom0's kernel ``release``; every disk of
    ``devices`` (old LV -> new LV) points at the new LV; the rest is kept as it is. A
    config with a ``bootloader`` (pygrub: the guest boots its own kernel) is refused: a
    rehomed 32-bit guest boots the dom0's 64-bit kernel (the plan refuses it first:
    ``check_rehomable``).
    """
    problem = rehome_boot_problem(xen_boot(parse_xen_config(text, source)))
    if problem:
        raise RehomeError(f"{source}: {problem}")
    kernel, ramdisk = kernel_paths(release)
    wanted = {"kernel": kernel, "ramdisk": ramdisk}
    lines = []
    seen = set()
    for line in text.splitlines():
        match = _KERNEL_LINE.match(line)
        if match and match[1] == "bootloader":  # empty (bootloader = ''): dropped
            continue
        if match:
            key = match[1]
            seen.add(key)
            lines.append(f"{key:<11} = '{wanted[key]}'")
            continue
        for old, new in devices.items():
            line = re.sub(rf"phy:{re.escape(old)}(?=[,'\"])", lambda _m, n=new: f"phy:{n}", line)
        lines.append(line)
    missing = [key for key in ("kernel", "ramdisk") if key not in seen]
    if missing:
        lines.append("")
        lines += [f"{key:<11} = '{wanted[key]}'" for key in missing]
    return "\n".join(lines) + "\n"
