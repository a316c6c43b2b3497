"""What must hold across the fleet: names, addresses, MACs, LVs, guest VGs, Xen configs unique.

Why apart from the tables: these rules are about pairs of entries, not one entry's
fields. Each is one row of ``FLEET_CHECKS`` (the rule as messages and the reference say
it, and what it compares); they read only the values that were right, so a host with a
bad address is not also "a duplicate".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .inventory_check import Add, Lookup
from .inventory_schema import guest_vg_of

Item = tuple[str, str, str, Any]  # host, field, value as shown, what must be unique


def _addresses(lookup: Lookup) -> Iterator[Item]:
    for section in ("xen_hosts", "kvm_hosts"):
        for name, host in lookup.values[section].items():
            for key in ("address", "migration_address"):
                if host.get(key):
                    yield name, key, host[key], host[key]
    for name, guest in lookup.values["guests"].items():
        for ip in guest.get("ips", ()):
            yield name, "ips" if ip != guest.get("address") else "address", ip, ip
        if guest.get("migration_address"):
            yield name, "migration_address", guest["migration_address"], guest["migration_address"]


def _macs(lookup: Lookup) -> Iterator[Item]:
    for name, guest in lookup.values["guests"].items():
        for mac in guest.get("macs", ()):
            yield name, "macs", mac, mac


def _domain_names(lookup: Lookup) -> Iterator[Item]:
    for name, guest in lookup.values["guests"].items():
        where = guest.get("kvm_host") or guest.get("rehome_to")
        if "domain_name" in guest and where:
            yield name, "domain_name", guest["domain_name"], (where, guest["domain_name"])


def _target_lvs(lookup: Lookup) -> Iterator[Item]:
    for name, guest in lookup.values["guests"].items():
        if "target_lv" in guest and guest.get("kvm_host"):
            yield name, "target_lv", guest["target_lv"], (guest["kvm_host"], guest["target_lv"])


def _guest_vgs(lookup: Lookup) -> Iterator[Item]:
    """The guest VGs of the matryoshka guests going to each KVM host: while it builds or
    opens a guest's disk, the host maps it and LVM sees that VG beside any other guest's
    then mapped there (two VGs of one name: LVM refuses to activate either by name)."""
    for name, guest in lookup.values["guests"].items():
        if "guest_vg" in guest and guest.get("kvm_host") and guest.get("layout") == "matryoshka":
            derived = guest["guest_vg"] == guest_vg_of(name)
            shown = f"{guest['guest_vg']} (from its name)" if derived else guest["guest_vg"]
            yield name, "guest_vg", shown, (guest["kvm_host"], guest["guest_vg"])


def move_group(guest: str) -> str:
    """The pyinfra group of one guest's move: the guest, its dom0 and its destination.

    ``move_`` and the name with ``.`` and ``-`` as ``_``: a host name has no ``_``, so no
    host is called so, and the name stays a Python identifier (pyinfra reads the groups
    of an inventory file from its module-level names)."""
    return "move_" + guest.replace(".", "_").replace("-", "_")


def _move_groups(lookup: Lookup) -> Iterator[Item]:
    for name in lookup.values["guests"]:
        yield name, "name", f"{name} (group {move_group(name)})", move_group(name)


def _xen_configs(lookup: Lookup) -> Iterator[Item]:
    for name, guest in lookup.values["guests"].items():
        if "xen_config" in guest and "xen_host" in guest:
            yield name, "xen_config", guest["xen_config"], (guest["xen_host"], guest["xen_config"])


FLEET_CHECKS: tuple[tuple[str, Callable[[Lookup], Iterable[Item]]], ...] = (
    ("an address must be unique in the fleet (address, migration_address, ips)", _addresses),
    ("a MAC must be unique in the fleet", _macs),
    ("a libvirt domain name must be unique on its destination", _domain_names),
    ("an LV name (target_lv) must be unique in its KVM host's VG", _target_lvs),
    (
        "a guest VG name (guest_vg) must be unique among the matryoshka guests of one KVM "
        "host: LVM refuses two VGs of one name (set another guest_vg: for one of them)",
        _guest_vgs,
    ),
    ("two guests on one dom0 cannot share a Xen config file (xen_config)", _xen_configs),
    (
        "two guests cannot share a --limit group: move_ and the name with '.' and '-' as '_' "
        "(rename one of them)",
        _move_groups,
    ),
)
NAMES_ONCE = "a name stands in one section only (xen_hosts, kvm_hosts or guests)"


def check_fleet(add: Add, lookup: Lookup) -> None:
    """Report every name, address, MAC, LV, guest VG and Xen config used twice where it must
    not be."""
    owners: dict[str, list[str]] = {}
    for section in ("xen_hosts", "kvm_hosts", "guests"):
        for name in lookup.values[section]:
            owners.setdefault(name, []).append(section)
    for name, sections in owners.items():
        if len(sections) > 1:
            add(name, "name", f"used more than once ({', '.join(sections)})")
    for rule, items in FLEET_CHECKS:
        _unique(add, rule, items(lookup))


def _unique(add: Add, rule: str, items: Iterable[Item]) -> None:
    seen: dict[Any, tuple[str, str]] = {}
    for host, field_name, value, key in items:
        if key not in seen:
            seen[key] = (host, field_name)
            continue
        first_host, first_field = seen[key]
        if (first_host, first_field) == (host, field_name):
            add(host, field_name, f"{value} is listed twice")
        else:
            add(
                host, field_name, f"{value} is already used by {first_host} ({first_field}): {rule}"
            )
