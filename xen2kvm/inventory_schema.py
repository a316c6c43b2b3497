"""The fleet file's schema: one table of fields per section (and the rules across fields).

Why a table: each key's rule (its kind, unit, default, whether it is required, what it
means) stands in exactly one row, one loop (``inventory_check.check_entry``) reads every
entry against its table, and the reference (``python -m xen2kvm.inventory_reference``)
is rendered from the same rows, so the documentation cannot drift from what is checked.

A field's default is a value, ``REQUIRED``, or ``Derived`` (made from the entry's other
fields or from a host it names); a field marked ``from_defaults`` may also stand in the
``defaults:`` section. Rules that tie fields together run only when every field they
need was read without a problem: a missing ``vg`` is one message, not one per guest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from . import inventory_fields as k
from .inventory_check import UNKNOWN, Derived, Field, Kind, Lookup, Rule, Section

# --- the rules that tie fields together -------------------------------------------------


def _destination(v: Mapping[str, Any], lookup: Lookup) -> tuple[str | None, Mapping[str, Any]]:
    """A guest's destination: its name and its entry (a KVM host, or the dom0 of a
    rehome)."""
    if v["kvm_host"] is not None:
        return v["kvm_host"], lookup.entry("kvm_hosts", v["kvm_host"])
    return v["rehome_to"], lookup.entry("xen_hosts", v["rehome_to"])


def _guest_migration_path(name: str, v: Mapping[str, Any], lookup: Lookup) -> str | None:
    where, entry = _destination(v, lookup)
    if v["migration_address"] is None or where is None or not entry:
        return None
    if not entry.get("migration_address"):
        return (
            f"{where} has none: its copies from {v['migration_address']} would come from "
            f"an address of {where}'s that the guest's key restriction (from=) cannot name: "
            f"set {where}'s migration_address (its address on that network) too"
        )
    return None


def _dom0_migration_path(name: str, v: Mapping[str, Any], lookup: Lookup) -> str | None:
    where, entry = _destination(v, lookup)
    dom0 = lookup.entry("xen_hosts", v["xen_host"])
    if where is None or not entry or not dom0.get("migration_address"):
        return None
    if not entry.get("migration_address"):
        return (
            f"{v['xen_host']} has a migration_address and {where} none: the final copy "
            f"would dial {dom0['migration_address']} from an address of {where}'s that the "
            f"key restriction (from=) cannot name: set {where}'s migration_address too"
        )
    return None


def _no_destination(name: str, v: Mapping[str, Any], lookup: Lookup) -> str | None:
    if v["kvm_host"] is None and v["rehome_to"] is None:
        return "required (or rehome_to: the dom0 it moves to)"
    return None


def _two_destinations(name: str, v: Mapping[str, Any], lookup: Lookup) -> str | None:
    kvm, dom0 = v["kvm_host"], v["rehome_to"]
    if kvm is not None and dom0 is not None:
        return (
            f"the guest goes to the KVM host {kvm!r} (kvm_host) or to the dom0 {dom0!r} "
            "(rehome_to), not both: remove one"
        )
    return None


def _rehome_to_itself(name: str, v: Mapping[str, Any], lookup: Lookup) -> str | None:
    if v["kvm_host"] is None and v["rehome_to"] == v["xen_host"]:
        return f"{v['rehome_to']!r} is already its dom0 (xen_host)"
    return None


def _rehome_modules(name: str, v: Mapping[str, Any], lookup: Lookup) -> str | None:
    dom0 = v["rehome_to"]
    if v["kvm_host"] is not None or dom0 is None or dom0 == v["xen_host"]:
        return None
    target = lookup.entry("xen_hosts", dom0)
    if "arch" not in target or "modules_packages" not in target:
        return None
    if v["arch"] == "i386" and target["arch"] == "x86_64" and not target["modules_packages"]:
        return (
            f"{dom0} boots its i386 guests with its x86_64 kernel: set modules_packages "
            f"on {dom0} (the directory of linux-modules-<release> .debs to push to them)"
        )
    return None


def _ips_hold_address(name: str, v: Mapping[str, Any], lookup: Lookup) -> str | None:
    if v["address"] not in v["ips"]:
        return f"must include the guest's address {v['address']}"
    return None


def _i440fx_vcpus(name: str, v: Mapping[str, Any], lookup: Lookup) -> str | None:
    machine, vcpus = v["machine"], v["vcpus"]
    i440fx = machine == "pc" or re.match(r"^pc-(i440fx-)?\d", machine)
    if vcpus is not None and i440fx and vcpus > k.I440FX_VCPUS_MAX:
        return (
            f"{vcpus} is more than QEMU's i440fx machine (machine: {machine}) takes "
            f"({k.I440FX_VCPUS_MAX}): set machine: q35, or fewer vcpus"
        )
    return None


def _boot_timeout(name: str, v: Mapping[str, Any], lookup: Lookup) -> str | None:
    timeout, boot = v["boot_timeout"], v["boot_time"]
    if timeout is not None and timeout <= boot:
        return (
            f"{timeout} s is not longer than its boot_time ({boot} s): its cutover would "
            "give up before it could answer"
        )
    return None


def _guest_vg_not_host_vg(name: str, v: Mapping[str, Any], lookup: Lookup) -> str | None:
    host_vg = lookup.entry("kvm_hosts", v["kvm_host"]).get("vg")
    if host_vg is not None and v["guest_vg"] == host_vg:
        return (
            f"{v['guest_vg']!r} is the KVM host's own VG name; the guest's VG must differ "
            "or the host would see two VGs of one name while it maps the disk"
        )
    return None


def _dm_name_fits(name: str, v: Mapping[str, Any], lookup: Lookup) -> str | None:
    host_vg = lookup.entry("kvm_hosts", v["kvm_host"]).get("vg")
    if host_vg is None:
        return None
    length = len(k.dm_name(host_vg, v["target_lv"]))
    if length > k.DM_NAME_MAX:
        return (
            f"/dev/mapper/{k.dm_name(host_vg, v['target_lv'])} (the KVM host's VG "
            f"{host_vg}, dashes doubled) is {length} characters; device-mapper takes "
            f"{k.DM_NAME_MAX}: set a shorter target_lv"
        )
    return None


# --- derived defaults ---------------------------------------------------------------------


def _xen_config(name: str, v: Mapping[str, Any], lookup: Lookup) -> Any:
    config_dir = lookup.entry("xen_hosts", v.get("xen_host")).get("xen_config_dir")
    return UNKNOWN if config_dir is None else f"{config_dir.rstrip('/')}/{name}.cfg"


def guest_vg_of(name: str) -> str:
    """A guest's ``guest_vg`` unless the inventory says otherwise: its name's first label
    (``www.example.net``: ``www``), other than A-Z a-z 0-9 _ made _."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name.split(".")[0])


def _guest_vg(name: str, v: Mapping[str, Any], lookup: Lookup) -> Any:
    return guest_vg_of(name)


def _own_name(name: str, v: Mapping[str, Any], lookup: Lookup) -> Any:
    return name


def _just_address(name: str, v: Mapping[str, Any], lookup: Lookup) -> Any:
    return [v["address"]] if "address" in v else UNKNOWN


# --- the tables ---------------------------------------------------------------------------

HOST_ARCHES = ("x86_64", "i686")
GUEST_ARCHES = ("amd64", "i386")
LAYOUTS = ("matryoshka", "plain")
VIRT_TYPES = ("kvm", "qemu")


INTEGRITY = ("checksum", "staged", "metadata")


def one_of(*allowed: str) -> Kind:
    return Kind(f"one of {', '.join(allowed)}", k.choice(*allowed))


IP = Kind("IP address", k.ip_address, limits="IPv4 or IPv6; no scope id like %eth0")
NAME_REF = Kind("host name", lambda v: k.text_value(v, k.NAME_MAX, "a host name"))
TEXT = Kind("text", k.text_value, limits="no control characters, at most 4096")
TOKEN = Kind("word", k.token, limits="A-Z a-z 0-9 @ . _ : + -")
PATH = Kind("absolute path", k.abs_path, limits="at most 4096")
LVM_NAME = Kind("LVM name", k.lvm_name, limits="A-Z a-z 0-9 + _ . -, at most 127")

SSH_FIELDS = (
    Field("ssh_user", TOKEN, "the user pyinfra logs in as", "root", from_defaults=True),
    Field(
        "ssh_port",
        Kind("TCP port", k.tcp_port, limits="1 to 65535"),
        "the port sshd listens on",
        22,
        from_defaults=True,
    ),
    Field(
        "ssh_key",
        TEXT,
        "the private key pyinfra uses (none: ssh's own choice)",
        None,
        True,
        from_defaults=True,
    ),
    Field(
        "ssh_known_hosts_file",
        TEXT,
        "the known_hosts file pyinfra checks host keys against",
        None,
        True,
        from_defaults=True,
    ),
)
ADDRESS_FIELDS = (
    Field("address", IP, "where pyinfra reaches it over SSH"),
    Field(
        "migration_address",
        IP,
        "its address on the migration network: a dom0's is dialled for the final copies, "
        "a KVM host's (or new dom0's) is where its copies come from over that network (the "
        "key's from=); none: address",
        None,
        True,
    ),
)

XEN_HOSTS = Section(
    "xen_hosts",
    "dom0",
    "The Xen dom0s the guests come from (and go to, when rehomed).",
    (
        *ADDRESS_FIELDS,
        Field("xen_config_dir", PATH, "where its domU configs are", "/etc/xen"),
        Field("arch", one_of(*HOST_ARCHES), "its kernel's arch", "x86_64"),
        Field(
            "vg",
            LVM_NAME,
            "the VG where LVs of guests rehomed to it are made (none: they must exist)",
            None,
            True,
        ),
        Field(
            "modules_packages",
            TEXT,
            "the controller's directory of `linux-modules-<release>` .debs for its 32-bit guests",
            None,
            True,
        ),
        *SSH_FIELDS,
    ),
)

KVM_HOSTS = Section(
    "kvm_hosts",
    "KVM host",
    "The KVM hosts the guests go to.",
    (
        *ADDRESS_FIELDS,
        Field("vg", LVM_NAME, "the host VG: one LV per guest, the guest's own VG inside it"),
        Field(
            "bridge",
            Kind("interface name", k.iface_name, limits="at most 15"),
            "the libvirt bridge on the guests' network",
            "br0",
        ),
        Field(
            "bridges",
            Kind("mapping of Xen bridge to KVM bridge", k.bridge_map, limits="interface names"),
            "the KVM bridge for each Xen bridge its guests' vifs are on (a vif's `bridge=`), "
            "e.g. `{xenbr0: br0, xenbr1: br1}`; a vif without `bridge=` or on a Xen bridge not "
            "named here joins `bridge`, but a guest whose vifs are on several Xen bridges, "
            "one of them not named here, is refused in the plan",
            {},
        ),
        Field(
            "libvirt_uri",
            Kind("libvirt URI", k.libvirt_uri),
            "where virsh connects",
            "qemu:///system",
        ),
        Field("state_dir", PATH, "journal, migration key, target mounts", "/var/lib/xen2kvm"),
        Field(
            "windows_during_boot",
            Kind("true or false", k.boolean),
            "whether a guest's cutover window may use this host while a guest started here "
            "before still boots (false: that window waits until it answers, still running on "
            "Xen; for a host whose boots take the CPU the window's copies need: each guest's "
            "downtime its own, the wave longer)",
            True,
        ),
        *SSH_FIELDS,
    ),
)

GUESTS = Section(
    "guests",
    "guest",
    "One entry per domU: its wave, its dom0, where it goes, its addresses.",
    (
        Field(
            "wave",
            Kind("whole number", k.whole(1, 1_000_000), limits="1 to 1000000"),
            "the wave it moves in (pyinfra group `wave<N>`)",
        ),
        Field("xen_host", NAME_REF, "the dom0 it runs on now", refers_to="xen_hosts"),
        Field("kvm_host", NAME_REF, "the KVM host it moves to", None, True, refers_to="kvm_hosts"),
        Field(
            "rehome_to",
            NAME_REF,
            "the dom0 it moves to instead, staying on Xen",
            None,
            True,
            refers_to="xen_hosts",
        ),
        Field("address", IP, "where pyinfra reaches it over SSH"),
        Field(
            "ips",
            Kind("list of IP addresses", k.ip_list),
            "every address it answers on (reclaimed with arping after the move)",
            Derived("its address alone", _just_address),
        ),
        Field(
            "macs",
            Kind("list of MAC addresses", k.mac_list),
            "its NICs' MACs on KVM, in order (each one replaces the Xen vif's)",
            [],
        ),
        Field("arch", one_of(*GUEST_ARCHES), "its Debian arch", "amd64"),
        Field(
            "kernel",
            Kind("Debian package name", k.debian_package, limits="a-z 0-9 + - ."),
            "the kernel package its prepare installs for booting on KVM, e.g. "
            "linux-image-cloud-amd64 (Debian's kernel for virtual machines: a quarter of the "
            "generic one's size, so less to copy and a smaller initramfs to boot); none: "
            "linux-image-amd64, linux-image-686-pae for i386",
            None,
            True,
            from_defaults=True,
        ),
        Field(
            "xen_config",
            PATH,
            "its Xen config file on its dom0",
            Derived("`<xen_config_dir>/<name>.cfg` of its dom0", _xen_config),
        ),
        Field(
            "xen_domain",
            Kind("Xen domain name", k.xen_domain, limits="no spaces nor '/', at most 253"),
            "its Xen domain's name, when that is not what its config's name = says (a "
            "domain renamed with xl rename); every xl call, stop and split-brain guard uses "
            "it (none: the config's name =)",
            None,
            True,
        ),
        Field(
            "domain_name",
            Kind("host name", k.host_name),
            "its libvirt domain name",
            Derived("the guest's name", _own_name),
        ),
        Field(
            "guest_vg",
            LVM_NAME,
            "the VG inside its disk (layout matryoshka)",
            Derived("the name's first label, other than A-Z a-z 0-9 _ made _", _guest_vg),
        ),
        Field(
            "target_lv",
            Kind(
                "LVM name",
                lambda v: k.lvm_name(v, lv=True),
                limits="at most 127; VG-LV with dashes doubled at most 127",
            ),
            "its LV in the KVM host's VG",
            Derived("the guest's name", _own_name),
        ),
        Field(
            "grow",
            Kind("mapping of mount point to size", k.grow_map, "bytes"),
            "extra room per filesystem on the new disk",
            {},
        ),
        Field(
            "memory",
            Kind("size", k.memory_mib, "MiB", "16 MiB to 16 TiB"),
            "its memory (none: as on Xen)",
            None,
            True,
            attr="memory_mib",
        ),
        Field(
            "vcpus",
            Kind("whole number", k.whole(1, k.VCPUS_MAX), limits="1 to 4096; 255 on machine pc"),
            "its virtual CPUs (none: as on Xen)",
            None,
            True,
        ),
        Field(
            "migration_address",
            IP,
            "its address on the migration network, dialled for its warm copies",
            None,
            True,
        ),
        Field(
            "layout",
            one_of(*LAYOUTS),
            "matryoshka: /boot on partition 1, "
            "an LVM PV with the guest's VG on 2; plain: one partition per filesystem",
            "matryoshka",
            from_defaults=True,
        ),
        Field(
            "boot_size",
            Kind("size", k.boot_size, "MiB", "64 MiB to 64 GiB"),
            "the new /boot partition",
            "512M",
            from_defaults=True,
        ),
        Field(
            "keep_macs",
            Kind("true or false", k.boolean),
            "keep the Xen vif MACs (false: libvirt assigns new ones)",
            True,
            from_defaults=True,
        ),
        Field(
            "serial_console",
            Kind("true or false", k.boolean),
            "getty, grub and kernel on ttyS0 (virsh console)",
            True,
            from_defaults=True,
        ),
        Field(
            "virt_type",
            one_of(*VIRT_TYPES),
            "libvirt domain type (qemu: no hardware virtualisation)",
            "kvm",
            from_defaults=True,
        ),
        Field("gateway", IP, "its default route", None, True, from_defaults=True),
        Field(
            "nameservers",
            Kind("list of IP addresses", k.nameserver_list),
            "its resolvers",
            [],
            from_defaults=True,
        ),
        Field(
            "services",
            Kind("list of words", k.token_list),
            "systemd units that must run after the move",
            ["ssh"],
            from_defaults=True,
        ),
        Field(
            "mta",
            TOKEN,
            "its mail transfer agent (checked after the move)",
            None,
            True,
            from_defaults=True,
        ),
        Field(
            "interface",
            Kind("interface name", k.iface_name, limits="at most 15"),
            "its network interface inside the guest, as verify/ checks it (each address is "
            "announced on the interface that holds it, found in the guest)",
            "eth0",
            from_defaults=True,
        ),
        Field("machine", TOKEN, "the QEMU machine type", "pc", from_defaults=True),
        Field(
            "boot_time",
            Kind("whole number", k.whole(1, 3600), "seconds", "1 to 3600"),
            "how long it takes to boot at its destination until SSH answers, for the "
            "projected downtime until one boot was measured",
            90,
            from_defaults=True,
        ),
        Field(
            "shutdown_timeout",
            Kind("whole number", k.whole(10, 3600), "seconds", "10 to 3600"),
            "how long its cutover waits for it to stop on Xen (xl shutdown -w); a guest "
            "still running then fails its cutover, and it stays on Xen",
            300,
            from_defaults=True,
        ),
        Field(
            "boot_timeout",
            Kind("whole number", k.whole(30, 7200), "seconds", "30 to 7200"),
            "how long its cutover waits for it to answer SSH once started at its "
            "destination before that guest's run fails; none: 600 on KVM, 300 on a dom0",
            None,
            True,
            from_defaults=True,
        ),
        Field(
            "downtime_budget",
            Kind("whole number", k.whole(1, 86400), "seconds", "1 to 86400"),
            "the longest downtime its cutover may project: over it, the cutover is not "
            "started (--data force_downtime=true starts it anyway); none: no limit",
            None,
            True,
            from_defaults=True,
        ),
        Field(
            "integrity",
            one_of(*INTEGRITY),
            "after the final copy, each filesystem compared with the stopped source before "
            "the new copy starts: checksum compares every file's content too (both sides "
            "read in full, inside the downtime), metadata only sizes, times and metadata; "
            "staged reads every file's content before the downtime (the warm copy against "
            "the running guest), then in the downtime all metadata and the content of what "
            "was copied since",
            "staged",
            from_defaults=True,
        ),
        Field(
            "skip_integrity",
            TEXT,
            "the reason to skip its integrity check (said in the run and the journal); none: "
            "checked",
            None,
            True,
        ),
        Field(
            "mkfs_options",
            Kind("mapping of filesystem type to options", k.mkfs_options),
            'extra mkfs options per type (ext2 ext3 ext4 xfs swap), e.g. {ext4: "-O '
            '^metadata_csum,^64bit"} for kernels before 3.18',
            {},
            from_defaults=True,
        ),
        *SSH_FIELDS,
    ),
    (
        Rule(
            "kvm_host", ("kvm_host", "rehome_to"), "kvm_host or rehome_to is set", _no_destination
        ),
        Rule(
            "rehome_to",
            ("kvm_host", "rehome_to"),
            "not both kvm_host and rehome_to",
            _two_destinations,
        ),
        Rule(
            "rehome_to",
            ("kvm_host", "rehome_to", "xen_host"),
            "rehome_to is not its own xen_host",
            _rehome_to_itself,
        ),
        Rule(
            "rehome_to",
            ("kvm_host", "rehome_to", "xen_host", "arch"),
            "an i386 guest rehomed to an x86_64 dom0 needs modules_packages on that dom0",
            _rehome_modules,
        ),
        Rule("ips", ("address", "ips"), "ips holds address", _ips_hold_address),
        Rule(
            "migration_address",
            ("migration_address", "kvm_host", "rehome_to"),
            "a guest with a migration_address moves to a host with one",
            _guest_migration_path,
        ),
        Rule(
            "xen_host",
            ("xen_host", "kvm_host", "rehome_to"),
            "a dom0 with a migration_address sends its guests to hosts with one",
            _dom0_migration_path,
        ),
        Rule(
            "boot_timeout",
            ("boot_timeout", "boot_time"),
            "boot_timeout is longer than boot_time",
            _boot_timeout,
        ),
        Rule(
            "vcpus", ("vcpus", "machine"), "at most 255 vcpus on machine pc (i440fx)", _i440fx_vcpus
        ),
        Rule(
            "guest_vg",
            ("guest_vg", "kvm_host"),
            "guest_vg is not its KVM host's vg",
            _guest_vg_not_host_vg,
        ),
        Rule(
            "target_lv",
            ("target_lv", "kvm_host"),
            "/dev/mapper/VG-LV (dashes doubled) of "
            "its KVM host's vg and target_lv is at most 127 characters",
            _dm_name_fits,
        ),
    ),
)

HOST_SECTIONS = (XEN_HOSTS, KVM_HOSTS, GUESTS)  # in the order they are read

DEFAULTS = Section(
    "defaults",
    "default",
    "Settings for every guest unless it says otherwise; ssh_* apply to the hosts too.",
    tuple(f for f in GUESTS.fields if f.from_defaults),
)
SECTIONS = (DEFAULTS, *HOST_SECTIONS)
