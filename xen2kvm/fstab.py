"""Read a guest's ``/etc/fstab`` and rewrite its device names for the new disk.

The fstab comes from the guest, which may be hostile: a mountpoint of a filesystem that
moves is where the KVM host mounts it below the new tree and copies into it with
``rsync --delete``, so ``mountpoint_problem`` says which mountpoints it cannot take
(``/../../etc`` is the host's own /etc).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class FstabEntry:
    device: str
    mountpoint: str
    fstype: str
    options: str = "defaults"
    dump: int = 0
    passno: int = 0
    line: int = field(default=0, compare=False)  # its line number in the guest's fstab
    text: str = field(default="", compare=False)  # that line, as the guest wrote it

    @property
    def is_swap(self) -> bool:
        return self.fstype == "swap"


def unescape(field: str) -> str:
    """fstab writes a space as ``\\040`` (and tab, newline, backslash likewise)."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def escape(field: str) -> str:
    """The inverse of ``unescape``: a value safe for one fstab field."""
    out = []
    for char in field:
        if char in " \t\n\\#":
            out.append(f"\\{ord(char):03o}")
        else:
            out.append(char)
    return "".join(out)


def parse_fstab(text: str) -> list[FstabEntry]:
    """Parse fstab text; comments and blank lines are dropped, short lines get defaults."""
    entries: list[FstabEntry] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = stripped.split()
        if len(fields) < 3:
            raise ValueError(f"fstab line {number}: needs at least 3 fields: {line!r}")
        dump = int(fields[4]) if len(fields) > 4 and fields[4].isdigit() else 0
        passno = int(fields[5]) if len(fields) > 5 and fields[5].isdigit() else 0
        entries.append(
            FstabEntry(
                device=unescape(fields[0]),
                mountpoint=unescape(fields[1]),
                fstype=fields[2],
                options=fields[3] if len(fields) > 3 else "defaults",
                dump=dump,
                passno=passno,
                line=number,
                text=line,
            )
        )
    return entries


def mountpoint_problem(mountpoint: str) -> str | None:
    """Why a filesystem mounted at ``mountpoint`` (unescaped) cannot be moved as it is,
    or None: it must be an absolute, normalised path (no ``.``, ``..``, ``//`` nor a
    trailing ``/``) without control characters."""
    if not mountpoint.startswith("/"):
        return "the mountpoint is not an absolute path"
    if any(not char.isprintable() for char in mountpoint):
        return "the mountpoint has control characters"
    if any(part in (".", "..") for part in mountpoint.split("/")):
        return "the mountpoint has '.' or '..' in it (it would lead out of the guest's tree)"
    normal = "/" + "/".join(part for part in mountpoint.split("/") if part)
    if normal != mountpoint:
        return f"the mountpoint is not normalised ({normal} would be)"
    return None


def rename_devices(entries: list[FstabEntry], renames: dict[str, str]) -> list[FstabEntry]:
    """Entries with Xen device names (``/dev/xvda2``) replaced by the new ones.

    Entries naming other devices (``proc``, ``tmpfs``, NFS, bind mounts) are kept as they
    are, and so are ``UUID=`` and ``LABEL=`` entries: the new filesystems keep their
    source's UUID and label (``xen2kvm.filesystems``).
    """
    return [replace(e, device=renames.get(e.device, e.device)) for e in entries]
