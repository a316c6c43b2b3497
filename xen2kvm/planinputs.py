"""What a guest's plan is computed from, frozen on its destination (pure: no pyinfra).

The inputs are three hosts' files: the guest's Xen config and LV sizes on its dom0, and
its fstab. They are read live until the first presync freezes them on the destination
(``paths.plan_inputs``); every later run, before and after the cutover, plans exactly
the same disk from them, even when the guest's files have changed or the guest is down.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

PLAN_VERSION = 1


@dataclass(frozen=True)
class PlanInputs:
    """What a guest's plan is computed from: frozen at the first presync."""

    xen_config: str  # the config file's text
    fstab: str  # the guest's /etc/fstab text
    sizes: dict[str, int]  # dom0 device -> bytes

    def to_json(self) -> str:
        data = {"version": PLAN_VERSION, **self.__dict__}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> PlanInputs:
        data = json.loads(text)
        return cls(data["xen_config"], data["fstab"], dict(data["sizes"]))
