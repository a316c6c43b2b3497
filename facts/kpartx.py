"""
Facts about ``kpartx``: the device-mapper devices it maps for the partitions of a disk
that the kernel does not partition itself (a guest's disk on an LV of the KVM host).
"""

from __future__ import annotations

import re

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override

_SEPARATOR = "--- dmsetup"
# kpartx -l: "<map name> : 0 <size in sectors> <underlying device> <offset>"
_LISTED = re.compile(r"(?P<name>\S+) : 0 (?P<size>\d+) \S+ \d+")
_NUMBER = re.compile(r"(\d+)$")


class KpartxMappings(FactBase[dict]):
    """
    The partitions ``kpartx`` finds on a device, by the device-mapper name it gives each
    with ``-p p`` (the operations always pass it), with whether that mapping exists and is
    open (in use: mounted, a PV of an active VG). Sizes in 512-byte sectors. Empty when
    the device has no partition table.

    A mapping is named after the device's dm name (``vg0-web1`` for ``/dev/vg0/web1``,
    hyphens in VG and LV names doubled), the delimiter and the number. Without ``-p``,
    Debian 12's kpartx (0.9.4) adds a ``p`` only after a name ending in a digit: the
    partitions of ``vg0/web`` become ``vg0-web1``, ``vg0-web2``, the names of the LVs
    ``web1`` and ``web2`` (seen in the lab: ``kpartx -a`` then fails half-way). With
    ``-p p`` they are ``vg0-webp1``, ``vg0-webp2``. A name taken by a device that is not
    this partition's mapping (its dm uuid does not start with ``partN-``) is ``taken``.
    Logical partitions are listed on the extended partition's mapping (``/dev/dm-N``),
    the extended partition itself with 2 sectors.

    .. code:: python

        {
            "vg0-webp1": {"number": 1, "size": 16384, "mapped": True, "open": False,
                          "taken": False},
        }

    Sample output (``kpartx -l -p p``, then every dm device's name, open count and uuid)::

        vg0-webp1 : 0 16384 /dev/vg0/web 2048
        vg0-webp2 : 0 112640 /dev/vg0/web 18432
        --- dmsetup
        vg0-web 1 LVM-Kx3...
        vg0-webp1 0 part1-LVM-Kx3...

    ``dmsetup`` prints ``No devices found`` when there are none. A device that does not
    exist (yet) lists no partitions: kpartx is not run on it.
    """

    default = dict

    @override
    def requires_command(self, device: str) -> str:
        return "kpartx"

    @override
    def command(self, device: str) -> StringCommand:
        # A device that does not exist (yet) has nothing mapped: see SfdiskPartitionTable.
        path = QuoteString(device)
        return StringCommand(
            "{ ! test -e",
            path,
            "|| kpartx -l -p p",
            path,
            f"; }} && echo '{_SEPARATOR}'",
            "&& dmsetup info -c --noheadings --separator ' ' -o name,open,uuid",
        )

    @override
    def process(self, output: list[str]) -> dict:
        if _SEPARATOR not in output:
            raise FactProcessError(f"unexpected kpartx/dmsetup output: {output}")
        at = output.index(_SEPARATOR)
        devices: dict[str, tuple[bool, str]] = {}
        for line in output[at + 1 :]:
            fields = line.split()
            if not fields or line.strip() == "No devices found":
                continue
            if len(fields) not in (2, 3) or not fields[1].isdigit():
                raise FactProcessError(f"unexpected dmsetup info line: {line!r}")
            devices[fields[0]] = (int(fields[1]) > 0, fields[2] if len(fields) == 3 else "")
        mappings: dict = {}
        for line in output[:at]:
            if not line.strip():
                continue
            match = _LISTED.fullmatch(line.strip())
            number = _NUMBER.search(match["name"]) if match else None
            if not match or not number:
                raise FactProcessError(f"unexpected kpartx -l line: {line!r}")
            is_open, uuid = devices.get(match["name"], (False, None))
            ours = uuid is not None and uuid.startswith(f"part{number[1]}-")
            mappings[match["name"]] = {
                "number": int(number[1]),
                "size": int(match["size"]),
                "mapped": ours,
                "open": ours and is_open,
                "taken": uuid is not None and not ours,
            }
        return mappings
