"""The fleet inventory: a YAML file admins edit, validated whole before anything runs.

The file has four sections (see ``inventory/prod.yml`` for a documented example)::

    defaults:     # apply to every guest (and ssh_* to every host) unless it says otherwise
    xen_hosts:    # name -> the dom0s the guests come from
    kvm_hosts:    # name -> the KVM hosts they go to
    guests:       # name -> one domU each: its wave, its dom0, its KVM host, its addresses

Among the guest settings (also allowed in ``defaults``; a guest's value replaces the
default whole), ``mkfs_options`` gives extra mkfs options per filesystem type, for guests
whose kernel cannot use what Debian 12's mkfs makes: kernels before 3.18 mount its ext4
(``metadata_csum``, ``64bit``) read-only, so ``mkfs_options: {ext4: "-O
^metadata_csum,^64bit"}``. The options are split as a shell would and each one quoted.

``load_fleet`` reads and validates it; every problem (unknown or missing keys, bad or
duplicate names, addresses and MACs, unreadable sizes, references to hosts that are not
there) is collected and raised at once as one ``InventoryError`` naming the host and the
field, so nothing connects anywhere until the file is right. Pure Python: no pyinfra here.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import InventoryError, SizeError
from .units import MIB, parse_size

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*$")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
# What LVM accepts in VG/LV names, minus the leading hyphen.
LVM_NAME_RE = re.compile(r"^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$")
IFACE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,15}$")

LAYOUTS = ("matryoshka", "plain")
MKFS_FSTYPES = ("ext2", "ext3", "ext4", "xfs", "swap")  # what disk.filesystem makes
GUEST_ARCHES = ("amd64", "i386")
HOST_ARCHES = ("x86_64", "i686")
VIRT_TYPES = ("kvm", "qemu")

# Keys every host (dom0, KVM host, guest) may carry: how pyinfra reaches it.
SSH_KEYS = ("ssh_user", "ssh_port", "ssh_key", "ssh_known_hosts_file")

# Guest settings that may also stand in ``defaults``.
GUEST_DEFAULT_KEYS = (
    "layout",
    "boot_size",
    "keep_macs",
    "serial_console",
    "virt_type",
    "gateway",
    "nameservers",
    "services",
    "mta",
    "interface",
    "machine",
    "mkfs_options",
    *SSH_KEYS,
)

XEN_HOST_KEYS = (
    "address",
    "migration_address",
    "xen_config_dir",
    "arch",
    "vg",  # where the LVs of guests rehomed to this dom0 are made (none: they must exist)
    "modules_packages",  # controller directory of modules packages for its 32-bit guests
    *SSH_KEYS,
)
KVM_HOST_KEYS = (
    "address",
    "migration_address",
    "vg",
    "bridge",
    "libvirt_uri",
    "state_dir",
    *SSH_KEYS,
)
GUEST_KEYS = (
    "wave",
    "xen_host",
    "kvm_host",
    "rehome_to",
    "address",
    "ips",
    "macs",
    "arch",
    "xen_config",
    "domain_name",
    "guest_vg",
    "target_lv",
    "grow",
    "memory",
    "vcpus",
    "migration_address",
    *GUEST_DEFAULT_KEYS,
)

BUILTIN_DEFAULTS: dict[str, Any] = {
    "layout": "matryoshka",
    "boot_size": "512M",
    "keep_macs": True,
    "serial_console": True,
    "virt_type": "kvm",
    "gateway": None,
    "nameservers": [],
    "services": ["ssh"],
    "mta": None,
    "interface": "eth0",
    "machine": "pc",
    "mkfs_options": {},
    "ssh_user": "root",
    "ssh_port": 22,
    "ssh_key": None,
    "ssh_known_hosts_file": None,
}


@dataclass(frozen=True)
class SshSettings:
    user: str
    port: int
    key: str | None
    known_hosts_file: str | None

    def pyinfra_data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"ssh_user": self.user, "ssh_port": self.port}
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

        ``xen_hosts``, ``kvm_hosts``, ``guests`` and one ``wave<N>`` per wave, which
        holds the wave's guests *and* the dom0s and KVM hosts they need, so
        ``--limit wave1`` touches exactly what wave 1 needs.
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
            members: list[str] = []
            for guest in self.wave_guests(wave):
                for name in (guest.xen_host, guest.kvm_host or guest.rehome_to, guest.name):
                    if name not in members:
                        members.append(name)
            groups[f"wave{wave}"] = [entries[name] for name in members]
        return groups

    def _host_data(self, role: str, address: str, ssh: SshSettings) -> dict[str, Any]:
        data: dict[str, Any] = {"ssh_hostname": address, "x2k_role": role}
        data.update(ssh.pyinfra_data())
        data.update(self.extra_data)
        return data


class _Problems:
    """Collects (host, field, message) triples; the inventory is refused if any."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, str]] = []

    def add(self, host: str, field_name: str, message: str) -> None:
        self.items.append((host, field_name, message))


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key written twice in one mapping.

    Plain ``yaml.safe_load`` keeps the last one silently: a guest listed twice would
    vanish without a word.
    """


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _value_node in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {key!r} (first at line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)


def load_fleet(path: str | Path, extra_data: Mapping[str, Any] | None = None) -> Fleet:
    """Read and validate the fleet file at ``path``; raise ``InventoryError`` if it is wrong."""
    source = str(path)
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise InventoryError(source, [("-", "file", f"cannot read: {exc.strerror}")]) from exc
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise InventoryError(source, [("-", "yaml", str(exc).replace("\n", " "))]) from exc
    return parse_fleet(raw, source, extra_data)


def parse_fleet(
    raw: Any, source: str = "<inventory>", extra_data: Mapping[str, Any] | None = None
) -> Fleet:
    """Validate ``raw`` (the parsed YAML) and build a ``Fleet``; collect every problem."""
    problems = _Problems()
    if not isinstance(raw, dict):
        raise InventoryError(source, [("-", "file", "must be a mapping with a guests: section")])

    _check_keys(problems, "-", raw, ("defaults", "xen_hosts", "kvm_hosts", "guests"), "section")
    defaults = _section(problems, raw, "defaults", required=False)
    _check_keys(problems, "defaults", defaults, GUEST_DEFAULT_KEYS)
    merged_defaults = {**BUILTIN_DEFAULTS, **defaults}

    xen_hosts: dict[str, XenHost] = {}
    for name, data in _section(problems, raw, "xen_hosts").items():
        if _check_entry(problems, name, data, XEN_HOST_KEYS, ("address",)):
            xen_hosts[name] = _xen_host(problems, name, data, merged_defaults)

    kvm_hosts: dict[str, KvmHost] = {}
    for name, data in _section(problems, raw, "kvm_hosts").items():
        if _check_entry(problems, name, data, KVM_HOST_KEYS, ("address", "vg")):
            kvm_hosts[name] = _kvm_host(problems, name, data, merged_defaults)

    guests: dict[str, Guest] = {}
    for name, data in _section(problems, raw, "guests").items():
        required = ("wave", "xen_host", "address")
        if _check_entry(problems, name, data, GUEST_KEYS, required):
            guest = _guest(problems, name, data, merged_defaults, xen_hosts, kvm_hosts)
            if guest is not None:
                guests[name] = guest

    _check_cross(problems, raw, xen_hosts, kvm_hosts, guests)
    if problems.items:
        raise InventoryError(source, problems.items)
    return Fleet(source, xen_hosts, kvm_hosts, guests, dict(extra_data or {}))


def _section(problems: _Problems, raw: dict, key: str, required: bool = True) -> dict:
    value = raw.get(key)
    if value is None:
        if required and key == "guests":
            problems.add("-", key, "missing section (no guests to migrate)")
        return {}
    if not isinstance(value, dict):
        problems.add("-", key, "must be a mapping of name -> settings")
        return {}
    return value


def _check_keys(
    problems: _Problems, host: str, data: Mapping, allowed: Iterable[str], what: str = "key"
) -> None:
    allowed = tuple(allowed)
    for key in data:
        if key not in allowed:
            hint = _close_match(str(key), allowed)
            problems.add(host, str(key), f"unknown {what}{hint}")


def _close_match(key: str, allowed: tuple[str, ...]) -> str:
    import difflib

    match = difflib.get_close_matches(key, allowed, n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _check_entry(
    problems: _Problems,
    name: Any,
    data: Any,
    allowed: tuple[str, ...],
    required: tuple[str, ...],
) -> bool:
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.add(str(name), "name", "must match ^[a-z0-9][a-z0-9.-]*$")
        return False
    if not isinstance(data, dict):
        problems.add(name, "-", "settings must be a mapping")
        return False
    _check_keys(problems, name, data, allowed)
    ok = True
    for key in required:
        if data.get(key) in (None, ""):
            problems.add(name, key, "required")
            ok = False
    return ok


def _ssh(problems: _Problems, name: str, data: Mapping, defaults: Mapping) -> SshSettings:
    port = data.get("ssh_port", defaults["ssh_port"])
    if not isinstance(port, int) or not 0 < port < 65536:
        problems.add(name, "ssh_port", f"not a TCP port: {port!r}")
        port = 22
    user = data.get("ssh_user", defaults["ssh_user"])
    if not isinstance(user, str) or not user:
        problems.add(name, "ssh_user", "must be a user name")
        user = "root"
    return SshSettings(
        user=user,
        port=port,
        key=_opt_str(problems, name, "ssh_key", data.get("ssh_key", defaults["ssh_key"])),
        known_hosts_file=_opt_str(
            problems,
            name,
            "ssh_known_hosts_file",
            data.get("ssh_known_hosts_file", defaults["ssh_known_hosts_file"]),
        ),
    )


def _opt_str(problems: _Problems, host: str, key: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        problems.add(host, key, f"must be a string, not {value!r}")
        return None
    return value


def _ip(problems: _Problems, host: str, key: str, value: Any) -> str | None:
    if value is None:
        return None
    try:
        return str(ipaddress.ip_address(str(value)))
    except ValueError:
        problems.add(host, key, f"not an IP address: {value!r}")
        return None


def _choice(problems: _Problems, host: str, key: str, value: Any, allowed: tuple) -> Any:
    if value not in allowed:
        problems.add(host, key, f"{value!r} is not one of {', '.join(map(str, allowed))}")
        return allowed[0]
    return value


def _lvm_name(problems: _Problems, host: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not LVM_NAME_RE.match(value) or value in (".", ".."):
        problems.add(host, key, f"not a valid LVM name: {value!r}")
        return "invalid"
    return value


def _xen_host(problems: _Problems, name: str, data: dict, defaults: Mapping) -> XenHost:
    return XenHost(
        name=name,
        address=_ip(problems, name, "address", data["address"]) or "",
        migration_address=_ip(problems, name, "migration_address", data.get("migration_address")),
        xen_config_dir=_abs_path(problems, name, "xen_config_dir", data.get("xen_config_dir")),
        arch=_choice(problems, name, "arch", data.get("arch", "x86_64"), HOST_ARCHES),
        ssh=_ssh(problems, name, data, defaults),
        vg=_lvm_name(problems, name, "vg", data["vg"]) if data.get("vg") is not None else None,
        modules_packages=_opt_str(problems, name, "modules_packages", data.get("modules_packages")),
    )


def _abs_path(problems: _Problems, host: str, key: str, value: Any, default: str = "/etc/xen"):
    if value is None:
        return default
    if not isinstance(value, str) or not value.startswith("/"):
        problems.add(host, key, f"must be an absolute path: {value!r}")
        return default
    return value


def _kvm_host(problems: _Problems, name: str, data: dict, defaults: Mapping) -> KvmHost:
    bridge = data.get("bridge", "br0")
    if not isinstance(bridge, str) or not IFACE_RE.match(bridge):
        problems.add(name, "bridge", f"not an interface name: {bridge!r}")
    return KvmHost(
        name=name,
        address=_ip(problems, name, "address", data["address"]) or "",
        migration_address=_ip(problems, name, "migration_address", data.get("migration_address")),
        vg=_lvm_name(problems, name, "vg", data["vg"]),
        bridge=str(bridge),
        libvirt_uri=str(data.get("libvirt_uri", "qemu:///system")),
        state_dir=_abs_path(problems, name, "state_dir", data.get("state_dir"), "/var/lib/xen2kvm"),
        ssh=_ssh(problems, name, data, defaults),
    )


def _size(problems: _Problems, host: str, key: str, value: Any, unit: str = "") -> int | None:
    if value is None:
        return None
    try:
        return parse_size(value, default_unit=unit)
    except SizeError as exc:
        problems.add(host, key, str(exc))
        return None


def _str_list(problems: _Problems, host: str, key: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        problems.add(host, key, f"must be a list of names, not {value!r}")
        return ()
    return tuple(value)


def _guest(
    problems: _Problems,
    name: str,
    data: dict,
    defaults: Mapping,
    xen_hosts: Mapping[str, XenHost],
    kvm_hosts: Mapping[str, KvmHost],
) -> Guest | None:
    def get(key: str) -> Any:
        return data.get(key, defaults.get(key))

    wave = data["wave"]
    if not isinstance(wave, int) or isinstance(wave, bool) or wave < 1:
        problems.add(name, "wave", f"must be a whole number from 1: {wave!r}")
        wave = 1
    _destination(problems, name, data, xen_hosts, kvm_hosts)
    for key, hosts in (
        ("xen_host", xen_hosts),
        ("kvm_host", kvm_hosts),
        ("rehome_to", xen_hosts),
    ):
        if data.get(key) is not None and data[key] not in hosts:
            known = ", ".join(sorted(hosts)) or "none"
            problems.add(name, key, f"{data[key]!r} is not in the inventory (known: {known})")

    address = _ip(problems, name, "address", data["address"]) or ""
    ips_raw = data.get("ips", [address])
    if not isinstance(ips_raw, list) or not ips_raw:
        problems.add(name, "ips", "must be a non-empty list of IP addresses")
        ips_raw = [address]
    ips = tuple(ip for ip in (_ip(problems, name, "ips", v) for v in ips_raw) if ip)
    if address and address not in ips:
        problems.add(name, "ips", f"must include the guest's address {address}")

    macs = []
    for mac in data.get("macs", []) or []:
        if not isinstance(mac, str) or not MAC_RE.match(mac.lower()):
            problems.add(name, "macs", f"not a MAC address: {mac!r}")
        else:
            macs.append(mac.lower())

    grow: dict[str, int] = {}
    grow_raw = data.get("grow", {}) or {}
    if not isinstance(grow_raw, dict):
        problems.add(name, "grow", "must map mount points to extra sizes, e.g. {/var: 2G}")
    else:
        for mount, extra in grow_raw.items():
            if not isinstance(mount, str) or not mount.startswith("/"):
                problems.add(name, "grow", f"not a mount point: {mount!r}")
                continue
            size = _size(problems, name, f"grow.{mount}", extra)
            if size:
                grow[mount] = size

    memory = _size(problems, name, "memory", data.get("memory"), unit="M")
    vcpus = data.get("vcpus")
    if vcpus is not None and (not isinstance(vcpus, int) or isinstance(vcpus, bool) or vcpus < 1):
        problems.add(name, "vcpus", f"must be a whole number from 1: {vcpus!r}")
        vcpus = None

    interface = get("interface")
    if not isinstance(interface, str) or not IFACE_RE.match(interface):
        problems.add(name, "interface", f"not an interface name: {interface!r}")
    xen = xen_hosts.get(data["xen_host"])
    config_dir = xen.xen_config_dir if xen else "/etc/xen"
    xen_config = _abs_path(
        problems, name, "xen_config", data.get("xen_config"), f"{config_dir}/{name}.cfg"
    )
    default_vg = re.sub(r"[^A-Za-z0-9_]", "_", name.split(".")[0])
    mta = get("mta")

    return Guest(
        name=name,
        wave=wave,
        xen_host=data["xen_host"],
        kvm_host=data.get("kvm_host"),
        address=address,
        ips=ips,
        macs=tuple(macs),
        arch=_choice(problems, name, "arch", data.get("arch", "amd64"), GUEST_ARCHES),
        xen_config=xen_config,
        domain_name=_check_name(problems, name, "domain_name", data.get("domain_name", name)),
        guest_vg=_lvm_name(problems, name, "guest_vg", data.get("guest_vg", default_vg)),
        target_lv=_lvm_name(problems, name, "target_lv", data.get("target_lv", name)),
        layout=_choice(problems, name, "layout", get("layout"), LAYOUTS),
        boot_size=_size(problems, name, "boot_size", get("boot_size"), unit="M") or 512 * MIB,
        keep_macs=_bool(problems, name, "keep_macs", get("keep_macs")),
        serial_console=_bool(problems, name, "serial_console", get("serial_console")),
        virt_type=_choice(problems, name, "virt_type", get("virt_type"), VIRT_TYPES),
        machine=str(get("machine")),
        gateway=_ip(problems, name, "gateway", get("gateway")),
        nameservers=tuple(
            ip for ip in (_ip(problems, name, "nameservers", v) for v in get("nameservers")) if ip
        )
        if isinstance(get("nameservers"), list)
        else _bad(problems, name, "nameservers", "must be a list of IP addresses", ()),
        services=_str_list(problems, name, "services", get("services")),
        mta=_opt_str(problems, name, "mta", mta),
        interface=str(interface),
        grow=grow,
        memory_mib=memory // MIB if memory else None,
        vcpus=vcpus,
        migration_address=_ip(problems, name, "migration_address", data.get("migration_address")),
        ssh=_ssh(problems, name, data, defaults),
        mkfs_options=_mkfs_options(problems, name, get("mkfs_options")),
        rehome_to=data.get("rehome_to"),
    )


def _destination(
    problems: _Problems,
    name: str,
    data: dict,
    xen_hosts: Mapping[str, XenHost],
    kvm_hosts: Mapping[str, KvmHost],
) -> None:
    """A guest goes to a KVM host (``kvm_host``) or to another dom0 (``rehome_to``)."""
    kvm, dom0 = data.get("kvm_host"), data.get("rehome_to")
    if kvm is None and dom0 is None:
        problems.add(name, "kvm_host", "required (or rehome_to: the dom0 it moves to)")
    elif kvm is not None and dom0 is not None:
        problems.add(
            name,
            "rehome_to",
            f"the guest goes to the KVM host {kvm!r} (kvm_host) or to the dom0 {dom0!r} "
            "(rehome_to), not both: remove one",
        )
    elif dom0 is not None and dom0 == data["xen_host"]:
        problems.add(name, "rehome_to", f"{dom0!r} is already its dom0 (xen_host)")
    elif dom0 in xen_hosts:
        target = xen_hosts[dom0]
        arch = data.get("arch", "amd64")
        if arch == "i386" and target.arch == "x86_64" and not target.modules_packages:
            problems.add(
                name,
                "rehome_to",
                f"{dom0} boots its i386 guests with its x86_64 kernel: set modules_packages "
                f"on {dom0} (the directory of linux-modules-<release> .debs to push to them)",
            )


def _mkfs_options(problems: _Problems, host: str, value: Any) -> dict[str, str]:
    """``{ext4: "-O ^metadata_csum,^64bit"}``: extra options for mkfs, per filesystem type."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        example = '{ext4: "-O ^metadata_csum"}'
        problems.add(host, "mkfs_options", f"must map types to options, e.g. {example}: {value!r}")
        return {}
    options = {}
    for fstype, text in value.items():
        key = f"mkfs_options.{fstype}"
        if fstype not in MKFS_FSTYPES:
            problems.add(host, key, f"not one of {', '.join(MKFS_FSTYPES)}")
        elif not isinstance(text, str):
            problems.add(host, key, f"must be a string of options, not {text!r}")
        else:
            try:
                words = shlex.split(text)
            except ValueError as exc:
                problems.add(host, key, f"cannot be split like a shell would: {exc}: {text!r}")
                continue
            fixed = [w for w in words if w[:2] in ("-U", "-L") or w.startswith("uuid=")]
            if fixed:
                problems.add(host, key, f"{fixed[0]!r}: xen2kvm sets the UUID and label itself")
                continue
            options[fstype] = text
    return options


def _bad(problems: _Problems, host: str, key: str, message: str, value: Any) -> Any:
    problems.add(host, key, message)
    return value


def _bool(problems: _Problems, host: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        problems.add(host, key, f"must be true or false, not {value!r}")
        return True
    return value


def _check_name(problems: _Problems, host: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        problems.add(host, key, f"{value!r} must match ^[a-z0-9][a-z0-9.-]*$")
        return host
    return value


def _check_cross(
    problems: _Problems,
    raw: dict,
    xen_hosts: Mapping[str, XenHost],
    kvm_hosts: Mapping[str, KvmHost],
    guests: Mapping[str, Guest],
) -> None:
    """Names, addresses and MACs must be unique across the whole fleet."""
    owners: dict[str, list[str]] = {}
    for section in ("xen_hosts", "kvm_hosts", "guests"):
        for name in (raw.get(section) or {}) if isinstance(raw.get(section), dict) else {}:
            owners.setdefault(str(name), []).append(section)
    for name, sections in owners.items():
        if len(sections) > 1:
            problems.add(name, "name", f"used more than once ({', '.join(sections)})")

    _unique(problems, "address", _fleet_addresses(xen_hosts, kvm_hosts, guests))
    _unique(
        problems,
        "macs",
        ((guest.name, "macs", mac) for guest in guests.values() for mac in guest.macs),
    )
    for guest in guests.values():
        kvm = kvm_hosts.get(guest.kvm_host)
        if kvm and guest.guest_vg == kvm.vg:
            problems.add(
                guest.name,
                "guest_vg",
                f"{guest.guest_vg!r} is the KVM host's own VG name; the guest's VG must differ "
                "or the host would see two VGs of one name while it maps the disk",
            )
    _unique(
        problems,
        "domain_name",
        (
            (g.name, "domain_name", f"{g.kvm_host or g.rehome_to}/{g.domain_name}")
            for g in guests.values()
        ),
    )
    _unique(
        problems,
        "target_lv",
        ((g.name, "target_lv", f"{g.kvm_host}/{g.target_lv}") for g in guests.values()),
    )


def _fleet_addresses(
    xen_hosts: Mapping[str, XenHost],
    kvm_hosts: Mapping[str, KvmHost],
    guests: Mapping[str, Guest],
) -> Iterable[tuple[str, str, str]]:
    for host in (*xen_hosts.values(), *kvm_hosts.values()):
        if host.address:
            yield host.name, "address", host.address
        if host.migration_address:
            yield host.name, "migration_address", host.migration_address
    for guest in guests.values():
        for ip in guest.ips:
            yield guest.name, "ips" if ip != guest.address else "address", ip
        if guest.migration_address:
            yield guest.name, "migration_address", guest.migration_address


def _unique(
    problems: _Problems, what: str, items: Iterable[tuple[str, str, str]], key: Callable = str
) -> None:
    seen: dict[str, tuple[str, str]] = {}
    for host, field_name, value in items:
        norm = key(value)
        if norm in seen:
            first_host, first_field = seen[norm]
            if first_host != host or first_field != field_name:
                problems.add(
                    host,
                    field_name,
                    f"{value} is already used by {first_host} ({first_field}): {what} must be "
                    "unique in the fleet",
                )
            else:
                problems.add(host, field_name, f"{value} is listed twice")
        else:
            seen[norm] = (host, field_name)
