"""Read a guest's ``/etc/fstab`` and rewrite its device names for the new disk."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class FstabEntry:
    device: str
    mountpoint: str
    fstype: str
    options: str = "defaults"
    dump: int = 0
    passno: int = 0

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
            )
        )
    return entries


def rename_devices(entries: list[FstabEntry], renames: dict[str, str]) -> list[FstabEntry]:
    """Entries with Xen device names (``/dev/xvda2``) replaced by the new ones.

    Entries naming other devices (``proc``, ``tmpfs``, NFS, ``UUID=``, bind mounts) are
    kept as they are.
    """
    return [replace(e, device=renames.get(e.device, e.device)) for e in entries]
