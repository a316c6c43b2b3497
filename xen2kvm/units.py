"""Sizes: parse the forms admins write (``512M``, ``4G``, ``1.5GiB``, ``2048``) into bytes."""

from __future__ import annotations

import re
from fractions import Fraction

from .errors import SizeError

KIB = 1024
MIB = 1024**2
GIB = 1024**3
TIB = 1024**4

# What a domain may have, whether from its Xen config, the inventory or the command line:
# less memory than this boots no Debian kernel; Xen's x86 hosts address at most 16 TiB;
# KVM on x86 runs at most 4096 vCPUs.
MIN_MEMORY_MIB = 16
MAX_MEMORY_MIB = 16 * 1024 * 1024
MAX_VCPUS = 4096

_UNITS = {
    "": 1,
    "b": 1,
    "k": KIB,
    "kb": KIB,
    "kib": KIB,
    "m": MIB,
    "mb": MIB,
    "mib": MIB,
    "g": GIB,
    "gb": GIB,
    "gib": GIB,
    "t": TIB,
    "tb": TIB,
    "tib": TIB,
}

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$", re.ASCII)
_MAX_SIZE_CHARS = 32  # no size anyone writes is longer; longer ones overflow floats


def parse_size(value: str | int, default_unit: str = "") -> int:
    """Return ``value`` in bytes. Units are binary (``G`` means GiB, as LVM means it).

    A bare number is in ``default_unit`` (bytes unless told). Raises ``SizeError``.
    """
    if isinstance(value, bool):
        raise SizeError(f"not a size: {value!r}")
    if isinstance(value, int):
        number, unit = Fraction(value), default_unit
    else:
        match = _SIZE_RE.match(str(value)) if len(str(value)) <= _MAX_SIZE_CHARS else None
        if not match:
            shown = repr(value) if len(str(value)) <= _MAX_SIZE_CHARS else "a very long string"
            raise SizeError(f"not a size: {shown} (write e.g. 512M, 4G, 1.5G)")
        number, unit = Fraction(match.group(1)), match.group(2) or default_unit
    factor = _UNITS.get(unit.lower())
    if factor is None:
        raise SizeError(f"unknown unit {unit!r} in {value!r} (use K, M, G or T)")
    size = int(number * factor)
    if size <= 0:
        raise SizeError(f"size must be positive: {value!r}")
    return size


def round_up(value: int, step: int) -> int:
    """Round ``value`` up to a multiple of ``step``."""
    return -(-value // step) * step


def human(size: int) -> str:
    """Short binary form for messages: ``4.0G``, ``512M``."""
    for unit, factor in (("T", TIB), ("G", GIB), ("M", MIB), ("K", KIB)):
        if size >= factor:
            number = size / factor
            return f"{number:.0f}{unit}" if number == int(number) else f"{number:.1f}{unit}"
    return f"{size}B"
