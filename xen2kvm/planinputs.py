"""What a guest's plan is computed from, frozen on its destination (pure: no pyinfra).

The inputs are three hosts' files: the guest's Xen config, its LVs' sizes and the
filesystems on them (their type, UUID and label, as ``blkid`` reads them; the features of
the ext ones, as ``dumpe2fs`` lists them) on its dom0, and its fstab. They are read live
until the first presync freezes them on the destination (``paths.plan_inputs``); every
later run, before and after the cutover, plans exactly the same disk from them, even when
the guest's files have changed or the guest is down.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from .filesystems import IDENTITY

# 1: the config, the fstab and the sizes. 2: and the filesystems (frozen by a xen2kvm
# that reads them; inputs frozen as 1 are still read, without them). 3: and the ext
# filesystems' features (inputs frozen as 1 or 2 are read without them: mkfs then makes
# the new filesystems with its own defaults, as the xen2kvm that froze them did).
PLAN_VERSION = 3


@dataclass(frozen=True)
class PlanInputs:
    """What a guest's plan is computed from: frozen at the first presync."""

    xen_config: str  # the config file's text
    fstab: str  # the guest's /etc/fstab text
    sizes: dict[str, int]  # dom0 device -> bytes
    # dom0 device -> what blkid reads on it ({"TYPE": "ext4", "UUID": ..., "LABEL": ...},
    # those it has); None in inputs frozen before xen2kvm read them (version 1)
    filesystems: dict[str, dict[str, str]] | None = None
    # dom0 device -> the features dumpe2fs lists for its ext filesystem, as listed
    # (["has_journal", "ext_attr", ..., "needs_recovery"]), for the devices blkid calls
    # ext2, ext3 or ext4; None in inputs frozen before xen2kvm read them (version 1, 2)
    features: dict[str, list[str]] | None = None

    def to_json(self) -> str:
        data: dict = {"xen_config": self.xen_config, "fstab": self.fstab, "sizes": self.sizes}
        data["version"] = 1
        if self.filesystems is not None:
            data["version"] = 2
            data["filesystems"] = self.filesystems
        if self.features is not None:
            data["version"] = PLAN_VERSION
            data["features"] = self.features
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> PlanInputs:
        data = json.loads(text)
        found = data.get("filesystems")
        filesystems = None if found is None else {k: dict(v) for k, v in found.items()}
        listed = data.get("features")
        features = None if listed is None else {k: list(v) for k, v in listed.items()}
        return cls(data["xen_config"], data["fstab"], dict(data["sizes"]), filesystems, features)


def identity(found: Mapping[str, Mapping[str, str]], device: str) -> dict[str, str]:
    """What the plan keeps of blkid's answer for one ``device`` (its TYPE, UUID and LABEL):
    the entry blkid printed for it, or its only entry (blkid may print another name of the
    same device); empty when blkid found nothing on it."""
    held = found.get(device)
    if held is None and len(found) == 1:
        held = next(iter(found.values()))
    return {key: held[key] for key in IDENTITY if held and held.get(key)}
