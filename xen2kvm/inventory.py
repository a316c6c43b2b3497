"""The fleet inventory: a YAML file admins edit, validated whole before anything runs.

The file has four sections (see ``inventory/prod.yml`` for a documented example, and
``docs/inventory.md`` for every key: its type, unit, default and meaning)::

    defaults:     # apply to every guest (and ssh_* to every host) unless it says otherwise
    xen_hosts:    # name -> the dom0s the guests come from
    kvm_hosts:    # name -> the KVM hosts they go to
    guests:       # name -> one domU each: its wave, its dom0, its KVM host, its addresses

``load_fleet`` reads it (``inventory_yaml``: bounded, so a hostile file is one clean
error), checks every entry against its section's table (``inventory_schema``), then
what must hold across the fleet (unique names, addresses, MACs, LVs, Xen configs). Every
problem is collected and raised at once as one ``InventoryError`` naming the host and
the field, so nothing connects anywhere until the file is right; one mistake is one
message (a host with a bad field is still known to the guests that name it). Pure
Python: no pyinfra here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InventoryError
from .inventory_check import Bad, Lookup, Section, check_entry, unknown_keys
from .inventory_fields import (
    IFACE_RE,
    LVM_NAME_RE,
    MAC_RE,
    MKFS_FSTYPES,
    NAME_RE,
    described,
    label,
)
from .inventory_fields import host_name as _host_name
from .inventory_fleet import check_fleet, move_group
from .inventory_schema import (
    DEFAULTS,
    GUEST_ARCHES,
    GUESTS,
    HOST_ARCHES,
    KVM_HOSTS,
    LAYOUTS,
    VIRT_TYPES,
    XEN_HOSTS,
)
from .inventory_yaml import read_fleet_yaml

__all__ = [
    "GUEST_ARCHES",
    "HOST_ARCHES",
    "IFACE_RE",
    "LAYOUTS",
    "LVM_NAME_RE",
    "MAC_RE",
    "MKFS_FSTYPES",
    "NAME_RE",
    "VIRT_TYPES",
    "Fleet",
    "Guest",
    "KvmHost",
    "SshSettings",
    "XenHost",
    "load_fleet",
    "move_group",
    "parse_fleet",
]

MAX_HOSTS = 10_000  # per section
MAX_PROBLEMS = 100  # listed; the rest are counted
SSH_KEYS = tuple(f.key for f in GUESTS.fields if f.key.startswith("ssh_"))
GUEST_DEFAULT_KEYS = DEFAULTS.keys
XEN_HOST_KEYS = XEN_HOSTS.keys
KVM_HOST_KEYS = KVM_HOSTS.keys
GUEST_KEYS = GUESTS.keys


@dataclass(frozen=True)
class SshSettings:
    user: str
    port: int
    key: str | None
    known_hosts_file: str | None

    def pyinfra_data(self) -> dict[str, Any]:
        # Host keys are checked strictly: a host missing from the known_hosts file is
        # refused, not added (pyinfra's own default is accept-new). An operator who wants
        # that says so for a run: --data ssh_strict_host_key_checking=accept-new.
        data: dict[str, Any] = {
            "ssh_user": self.user,
            "ssh_port": self.port,
            "ssh_strict_host_key_checking": "yes",
        }
        if self.key:
            data["ssh_key"] = self.key
        if self.known_hosts_file:
            data["ssh_known_hosts_file"] = self.known_hosts_file
        return data


@dataclass(frozen=True)
class XenHost:
    name: str
    address: str
    migration_address: str | None
    xen_config_dir: str
    arch: str
    ssh: SshSettings
    vg: str | None = None
    modules_packages: str | None = None


@dataclass(frozen=True)
class KvmHost:
    name: str
    address: str
    migration_address: str | None
    vg: str
    bridge: str
    libvirt_uri: str
    state_dir: str  # journal, migration key, target mounts
    ssh: SshSettings
    # The KVM bridge for each Xen bridge (a vif's bridge=); the others join ``bridge``.
    bridges: Mapping[str, str] = field(default_factory=dict)
    # False: no cutover window uses it while a guest started here before still boots.
    windows_during_boot: bool = True


@dataclass(frozen=True)
class Guest:
    name: str
    wave: int
    xen_host: str
    kvm_host: str | None  # None when the guest is rehomed to another dom0 (rehome_to)
    address: str
    ips: tuple[str, ...]
    macs: tuple[str, ...]
    arch: str
    xen_config: str
    domain_name: str
    guest_vg: str
    target_lv: str
    layout: str
    boot_size: int
    keep_macs: bool
    serial_console: bool
    virt_type: str
    machine: str
    gateway: str | None
    nameservers: tuple[str, ...]
    services: tuple[str, ...]
    mta: str | None
    interface: str
    grow: Mapping[str, int]
    memory_mib: int | None
    vcpus: int | None
    migration_address: str | None
    ssh: SshSettings
    # Extra mkfs options per filesystem type, one shell-quoted string each.
    mkfs_options: Mapping[str, str] = field(default_factory=dict)
    # The dom0 this guest moves to (staying on Xen), instead of a KVM host (kvm_host None).
    rehome_to: str | None = None
    boot_time: int = 90  # seconds to SSH at its destination, until one boot was measured
    downtime_budget: int | None = None  # seconds its cutover may project, at most
    shutdown_timeout: int = 300  # seconds it may take to stop on Xen
    boot_timeout: int | None = None  # seconds to answer once started (None: the destination's)
    # Its Xen domain's name when the inventory says it (None: its config's ``name =``).
    xen_domain: str | None = None
    integrity: str = "staged"  # staged, checksum or metadata: what the checks read
    skip_integrity: str | None = None  # the reason its integrity check is skipped
    kernel: str | None = None  # the kernel package prepare installs (None: by arch)

    @property
    def integrity_check(self) -> str:
        """How its final copy is checked: ``checksum``, ``metadata`` or ``skip``."""
        return "skip" if self.skip_integrity else self.integrity


@dataclass(frozen=True)
class Fleet:
    source: str
    xen_hosts: Mapping[str, XenHost]
    kvm_hosts: Mapping[str, KvmHost]
    guests: Mapping[str, Guest]
    extra_data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def waves(self) -> list[int]:
        return sorted({guest.wave for guest in self.guests.values()})

    def wave_guests(self, wave: int) -> list[Guest]:
        return [guest for guest in self.guests.values() if guest.wave == wave]

    def pyinfra_groups(self) -> dict[str, list[tuple[str, dict[str, Any]]]]:
        """Groups for a pyinfra inventory file: hosts with their data.

        ``xen_hosts``, ``kvm_hosts``, ``guests``; one ``wave<N>`` per wave, which holds
        the wave's guests *and* the dom0s and KVM hosts they need, so ``--limit wave1``
        touches exactly what wave 1 needs; and one ``move_<guest>`` per guest (see
        ``move_group``) with the guest, its dom0 and its destination, so
        ``--limit move_www_example_net`` moves (or rolls back) that guest alone.
        """
        entries: dict[str, tuple[str, dict[str, Any]]] = {}
        for xen in self.xen_hosts.values():
            entries[xen.name] = (xen.name, self._host_data("xen_host", xen.address, xen.ssh))
        for kvm in self.kvm_hosts.values():
            entries[kvm.name] = (kvm.name, self._host_data("kvm_host", kvm.address, kvm.ssh))
        for guest in self.guests.values():
            data = self._host_data("guest", guest.address, guest.ssh)
            data["x2k_wave"] = guest.wave
            entries[guest.name] = (guest.name, data)

        groups: dict[str, list[tuple[str, dict[str, Any]]]] = {
            "xen_hosts": [entries[name] for name in self.xen_hosts],
            "kvm_hosts": [entries[name] for name in self.kvm_hosts],
            "guests": [entries[name] for name in self.guests],
        }
        for wave in self.waves:
            groups[f"wave{wave}"] = [entries[name] for name in _hosts(self.wave_guests(wave))]
        for guest in self.guests.values():
            groups[move_group(guest.name)] = [entries[name] for name in _hosts([guest])]
        return groups

    def _host_data(self, role: str, address: str, ssh: SshSettings) -> dict[str, Any]:
        data: dict[str, Any] = {"ssh_hostname": address, "x2k_role": role}
        data.update(ssh.pyinfra_data())
        data.update(self.extra_data)
        return data


def _hosts(guests: list[Guest]) -> list[str]:
    """The guests with the dom0s they leave and the hosts they go to, each named once."""
    members: list[str] = []
    for guest in guests:
        for name in (guest.xen_host, guest.kvm_host or guest.rehome_to, guest.name):
            if name and name not in members:
                members.append(name)
    return members


def load_fleet(path: str | Path, extra_data: Mapping[str, Any] | None = None) -> Fleet:
    """Read and validate the fleet file at ``path``; raise ``InventoryError`` if it is wrong."""
    return parse_fleet(read_fleet_yaml(path), str(path), extra_data)


def parse_fleet(
    raw: Any, source: str = "<inventory>", extra_data: Mapping[str, Any] | None = None
) -> Fleet:
    """Validate ``raw`` (the parsed YAML) and build a ``Fleet``; collect every problem."""
    problems: list[tuple[str, str, str]] = []

    def add(host: str, field_name: str, message: str) -> None:
        problems.append((host, field_name, message))

    if not isinstance(raw, dict):
        raise InventoryError(source, [("-", "file", "must be a mapping with a guests: section")])
    sections = ("defaults", "xen_hosts", "kvm_hosts", "guests")
    unknown_keys(add, "-", raw, sections, "section")
    defaults = _section(add, raw, "defaults")
    unknown_keys(add, "defaults", defaults, DEFAULTS.keys, "key")
    if "guests" not in raw or raw["guests"] is None:
        add("-", "guests", "missing section (no guests to migrate)")
    too_big = [key for key in sections if len(_section(add, raw, key, quiet=True)) > MAX_HOSTS]
    if too_big:
        count = len(raw[too_big[0]])
        message = f"{count} entries: at most {MAX_HOSTS} (split the fleet into several files)"
        raise InventoryError(source, [("-", too_big[0], message)])

    lookup = Lookup()
    entries: dict[str, dict[str, dict[str, Any]]] = {}
    for section in (XEN_HOSTS, KVM_HOSTS, GUESTS):
        lookup.raw_names[section.key] = set(_section(add, raw, section.key, quiet=True))
    for section in (XEN_HOSTS, KVM_HOSTS, GUESTS):
        entries[section.key] = _entries(
            add, section, _section(add, raw, section.key), defaults, lookup
        )
        lookup.values[section.key] = entries[section.key]
    check_fleet(add, lookup)
    if problems:
        if len(problems) > MAX_PROBLEMS:
            more = len(problems) - MAX_PROBLEMS
            problems[MAX_PROBLEMS:] = [("-", "-", f"{more} more problem(s), not listed")]
        raise InventoryError(source, problems)
    return Fleet(
        source,
        _build(XenHost, XEN_HOSTS, entries["xen_hosts"]),
        _build(KvmHost, KVM_HOSTS, entries["kvm_hosts"]),
        _build(Guest, GUESTS, entries["guests"]),
        dict(extra_data or {}),
    )


def _section(add: Any, raw: dict, key: str, quiet: bool = False) -> dict:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        if not quiet:
            shape = "key: value" if key == "defaults" else "name: settings"
            add("-", key, f"must be a mapping of {shape}, not {described(value)}")
        return {}
    return value


def _entries(
    add: Any, section: Section, items: dict, defaults: Mapping[str, Any], lookup: Lookup
) -> dict[str, dict[str, Any]]:
    """The good values of every well-named entry of a section, checked against its table."""
    entries = {}
    for name, data in items.items():
        try:
            _host_name(name)
        except Bad as exc:
            add(label(name), "name", exc.message)
            continue
        if not isinstance(data, dict):
            what = "nothing" if data is None else described(data)
            add(name, "settings", f"must be a mapping of key: value, not {what}")
            continue
        entries[name] = check_entry(section, name, data, defaults, lookup, add)
    return entries


def _build(cls: type, section: Section, entries: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """The public dataclasses, from entries that were all read without a problem."""
    built = {}
    for name, values in entries.items():
        ssh = SshSettings(
            user=values["ssh_user"],
            port=values["ssh_port"],
            key=values["ssh_key"],
            known_hosts_file=values["ssh_known_hosts_file"],
        )
        kwargs = {
            spec.attr or spec.key: values[spec.key]
            for spec in section.fields
            if spec.key not in SSH_KEYS
        }
        built[name] = cls(name=name, ssh=ssh, **kwargs)
    return built
