"""The names a block device goes by on a Linux host (pure: no pyinfra)."""

from __future__ import annotations

import re

_MAPPER = re.compile(r"/dev/mapper/(?P<vg>(?:[^-/]|--)+)-(?P<lv>(?:[^-/]|--)+)")
_VG_LV = re.compile(r"/dev/(?P<vg>[^/]+)/(?P<lv>[^/]+)")
_NOT_VGS = ("mapper", "disk", "block", "char", "input", "bus", "pts", "shm", "net", "cpu")


def device_aliases(device: str) -> set[str]:
    """The names an LV goes by: ``/dev/VG/LV`` and ``/dev/mapper/VG-LV`` (hyphens doubled)."""
    names = {device}
    match = _VG_LV.fullmatch(device)
    if match and match["vg"] not in _NOT_VGS:
        vg, lv = (match[part].replace("-", "--") for part in ("vg", "lv"))
        names.add(f"/dev/mapper/{vg}-{lv}")
    match = _MAPPER.fullmatch(device)
    if match:
        names.add(f"/dev/{match['vg'].replace('--', '-')}/{match['lv'].replace('--', '-')}")
    return names


def mapping_path(device: str, number: int) -> str:
    """Where ``kpartx -p p`` maps partition ``number`` of an LV given as ``/dev/VG/LV``."""
    mapper = sorted(alias for alias in device_aliases(device) if alias.startswith("/dev/mapper/"))
    if not mapper:
        raise ValueError(f"{device} is not an LV path (/dev/VG/LV or /dev/mapper/VG-LV)")
    return f"{mapper[0]}p{number}"
