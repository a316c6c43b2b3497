"""
The plan of one guest, as the operations see it: computed from facts of three hosts (its
Xen config and LV sizes on the dom0, its fstab in the guest) and then frozen on the KVM
host (``<state_dir>/plans/<guest>.json``) so every later run, before and after cutover,
plans exactly the same disk even when the guest's files have changed since.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from io import StringIO
from typing import Any

from pyinfra import host, inventory
from pyinfra.api import OperationValueError, operation
from pyinfra.api.exceptions import OperationError
from pyinfra.facts.files import FileContents
from pyinfra.operations import files

from facts.disk import BlockDeviceSize
from facts.xen import XenConfigFile
from xen2kvm.errors import Xen2KvmError
from xen2kvm.fstab import parse_fstab
from xen2kvm.inventory import Fleet, Guest
from xen2kvm.planner import GuestPlan, plan_guest, source_volumes
from xen2kvm.pyinfra_inventory import fleet_for
from xen2kvm.xenconfig import XenDomain, parse_xen_config

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


def plan_path(fleet: Fleet, guest: Guest) -> str:
    return f"{fleet.kvm_hosts[guest.kvm_host].state_dir}/plans/{guest.name}.json"


def _other(name: str) -> Any:
    return inventory.get_host(name)


def saved_inputs(fleet: Fleet, guest: Guest) -> PlanInputs | None:
    lines = _other(guest.kvm_host).get_fact(FileContents, path=plan_path(fleet, guest))
    return PlanInputs.from_json("\n".join(lines)) if lines else None


def live_inputs(guest: Guest) -> PlanInputs:
    """Read the inputs from the dom0 and the running guest (before cutover only)."""
    dom0 = _other(guest.xen_host)
    text = dom0.get_fact(XenConfigFile, path=guest.xen_config)
    if text is None:
        raise OperationError(f"{guest.name}: its Xen config {guest.xen_config} is not on {dom0}")
    domain = _parse(guest, text)
    sizes = {}
    for disk in domain.disks:
        if disk.cdrom or not disk.target:
            continue
        size = dom0.get_fact(BlockDeviceSize, device=disk.target)
        if not size:
            raise OperationError(f"{guest.name}: {disk.target} not found on {dom0}")
        sizes[disk.target] = size
    fstab = _other(guest.name).get_fact(FileContents, path="/etc/fstab")
    if fstab is None:
        raise OperationError(f"{guest.name}: it has no /etc/fstab")
    return PlanInputs(text, "\n".join(fstab) + "\n", sizes)


def _parse(guest: Guest, text: str) -> XenDomain:
    try:
        return parse_xen_config(text, f"{guest.xen_host}:{guest.xen_config}")
    except Xen2KvmError as exc:
        raise OperationError(f"{guest.name}: {exc}") from None


def plan_inputs(fleet: Fleet, guest: Guest) -> PlanInputs:
    """The inputs of the guest's plan: the frozen ones if there are any, else live facts."""
    return saved_inputs(fleet, guest) or live_inputs(guest)


def guest_plan(fleet: Fleet, guest: Guest, inputs: PlanInputs) -> GuestPlan:
    """The guest's plan from its inputs (see ``plan_inputs``)."""
    domain = _parse(guest, inputs.xen_config)
    try:
        volumes = source_volumes(guest.name, domain, parse_fstab(inputs.fstab), inputs.sizes)
        return plan_guest(guest, fleet.kvm_hosts[guest.kvm_host], domain, volumes)
    except (Xen2KvmError, ValueError) as exc:
        raise OperationError(str(exc)) from None


@operation()
def frozen(guest: str):
    """
    Freeze a guest's plan inputs on its KVM host (run there, before anything is built).

    + guest: the guest (its name in the fleet inventory)

    **Example:**

    .. code:: python

        plans.frozen(guest="web1")
    """
    fleet = fleet_for(host)
    spec = fleet.guests.get(guest)
    if spec is None:
        raise OperationValueError(f"{guest!r} is not a guest of {fleet.source}")
    if saved_inputs(fleet, spec) is not None:
        host.noop(f"the plan of {guest} is already frozen")
        return
    inputs = live_inputs(spec)
    guest_plan(fleet, spec, inputs)  # refuse what cannot be planned before anything is written
    yield from files.put._inner(
        src=StringIO(inputs.to_json()),
        dest=plan_path(fleet, spec),
        mode="0600",
        create_remote_dir=True,
    )
