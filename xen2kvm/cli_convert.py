"""``xen2kvm convert CONFIG``: print the libvirt domain XML for a Xen domain config.

It needs neither Xen nor libvirt: the config is parsed by our own parser and the XML
rendered from the same template the migration uses. Options stand in for what the
inventory would say (bridge, host VG and LV, MACs, memory, vCPUs) and are checked as the
inventory's fields are; or ``--inventory INV --guest NAME`` takes them from the inventory,
as the deploy does, so the XML is the one the deploy defines for that guest. Configs the
migration refuses are refused here too, unless ``--force``; the output file is written
whole or not at all.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import OutputError, SizeError, Xen2KvmError, XenConfigError
from .fleet_access import load_inventory, select_guests
from .inventory import GUEST_ARCHES, IFACE_RE, LVM_NAME_RE, NAME_RE, Guest, KvmHost, SshSettings
from .inventory_schema import guest_vg_of
from .planner import plan_domain
from .render import domain_xml
from .units import MAX_MEMORY_MIB, MAX_VCPUS, MIB, MIN_MEMORY_MIB, parse_size
from .xenconfig import XenDomain, load_xen_config

DESCRIPTION = """\
Print the libvirt domain XML that a migration would define for a Xen domain config.

Needs neither Xen nor libvirt: the config is parsed by xen2kvm's own parser (never
executed) and the XML rendered from the template the migration uses. The options stand
in for what the inventory says of the guest; --inventory INV --guest NAME takes all of it
from the inventory instead (bridge, VG and LV, domain name, memory, vCPUs, MACs, serial
console, virt type), so the XML is the one the deploy defines for that guest.

Configs that the migration (pyinfra INVENTORY deploy.py) refuses are refused here too,
naming the line: HVM domains, whole disks (xvda rather than xvda1: pygrub guests with a
partition table of their own) and configs without a disk. --force converts them anyway
with a warning; the XML then describes a domain that no migration would make.
"""

EPILOG = """\
examples:
  xen2kvm convert /etc/xen/web01.cfg
  xen2kvm convert /etc/xen/web01.cfg --memory 2G --vcpus 2 -o /tmp/web01.xml
  xen2kvm convert web01.cfg --inventory inventory/prod.py --guest web01.example.net
  virt-xml-validate /tmp/web01.xml domain
"""

MAX_LVM_NAME = 127  # lvcreate's limit; the LV defaults to the domain name


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "convert",
        help="print the libvirt domain XML for a Xen domain config",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("config", metavar="CONFIG", help="the Xen domain config (xm or xl syntax)")
    add(
        "--name",
        type=_domain_name,
        help="libvirt domain name: lower-case letters, digits, '.' and '-', starting with a "
        "letter or digit (default: the config's name)",
    )
    add("--bridge", type=_bridge, help="host bridge the NICs join (default: br0)")
    add("--vg", type=_lvm_name("--vg"), help="the KVM host's VG (default: vg0)")
    add(
        "--lv",
        type=_lvm_name("--lv"),
        help="the guest's LV in that VG, the disk the domain boots (default: the domain name)",
    )
    add(
        "--virt-type",
        choices=("kvm", "qemu"),
        help="libvirt domain type: kvm (hardware virtualisation) or qemu (emulation, slow; "
        "for hosts without /dev/kvm) (default: kvm)",
    )
    add(
        "--new-macs",
        action="store_true",
        help="give the NICs new MACs (52:54:00:...) instead of the Xen config's",
    )
    add(
        "--memory",
        type=_memory,
        metavar="SIZE",
        help="memory with a binary unit: 512M, 2G, 1.5G; a bare number is MiB; "
        f"{MIN_MEMORY_MIB}M to {MAX_MEMORY_MIB // MIB}T "
        "(default: the config's maxmem, else memory, else 512M)",
    )
    add(
        "--vcpus",
        type=_vcpus,
        metavar="N",
        help=f"virtual CPUs, 1 to {MAX_VCPUS} (default: the config's vcpus, else 1)",
    )
    add(
        "--arch",
        choices=GUEST_ARCHES,
        help="the guest's Debian userland architecture, as the inventory's arch (default: "
        "amd64); the domain is x86_64 either way",
    )
    add("--no-serial", action="store_true", help="no serial console on ttyS0")
    add(
        "--inventory",
        metavar="INV",
        help="take the guest's settings from this inventory (inventory/NAME.py or its .yml), "
        "as the deploy does; needs --guest, and none of the options above",
    )
    add("--guest", metavar="NAME", help="the guest of --inventory whose Xen config CONFIG is")
    add(
        "--force",
        action="store_true",
        help="convert a config the migration refuses (HVM, whole disk, no disk), with a warning",
    )
    add(
        "-o",
        "--output",
        metavar="FILE",
        help="write the XML to FILE (whole, or not at all) instead of stdout",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    domain = load_xen_config(args.config)
    by_inventory = bool(args.inventory or args.guest)
    name = "" if by_inventory else _name(args, domain)  # the inventory names the domain
    for problem in refusals(domain):
        if not args.force:
            fix = f"{problem.message} (--force converts it anyway)"
            raise XenConfigError(problem.filename, problem.line, problem.key, fix)
        print(f"xen2kvm: warning: {problem.located} (converted anyway: --force)", file=sys.stderr)
    if by_inventory:
        guest, kvm = from_inventory(args)
        xen_host = guest.xen_host
    else:
        guest = _guest(args, domain, name, args.lv or name)
        vg, bridge = args.vg or "vg0", args.bridge or "br0"
        kvm = KvmHost("kvm", "", None, vg, bridge, "qemu:///system", "/var/lib/xen2kvm", guest.ssh)
        kvm = _one_bridge(args, domain, kvm)
        xen_host = "-"
    plan = plan_domain(guest, kvm, domain)
    xml = domain_xml(plan, xen_host, guest.xen_config)
    for note in plan.notes:
        print(f"xen2kvm: note: {note}", file=sys.stderr)
    if args.output is not None:
        write_whole(args.output, xml, args.config)
    else:
        sys.stdout.write(xml)
    return 0


def _one_bridge(args: argparse.Namespace, domain: XenDomain, kvm: KvmHost) -> KvmHost:
    """Without an inventory there is no ``bridges`` map: vifs on several Xen bridges are
    refused by the planner, as the deploy refuses them, unless ``--force`` joins them all
    to ``--bridge`` (said)."""
    on_xen = {vif.bridge for vif in domain.vifs}
    if len(on_xen) < 2 or not args.force:
        return kvm
    names = ", ".join(sorted(b or "Xen's default" for b in on_xen))
    print(
        f"xen2kvm: warning: its vifs are on several Xen bridges ({names}): all join "
        f"{kvm.bridge} (converted anyway: --force; the inventory's bridges maps them)",
        file=sys.stderr,
    )
    return dataclasses.replace(kvm, bridges={b: kvm.bridge for b in on_xen if b})


# What the inventory says of a guest: with --inventory, these options would contradict it.
GUEST_OPTIONS = (
    ("name", "--name"),
    ("bridge", "--bridge"),
    ("vg", "--vg"),
    ("lv", "--lv"),
    ("virt_type", "--virt-type"),
    ("new_macs", "--new-macs"),
    ("memory", "--memory"),
    ("vcpus", "--vcpus"),
    ("arch", "--arch"),
    ("no_serial", "--no-serial"),
)


class OptionError(Xen2KvmError):
    """Options that do not go together."""


def from_inventory(args: argparse.Namespace) -> tuple[Guest, KvmHost]:
    """The guest and its KVM host as the deploy reads them from the inventory."""
    if not (args.inventory and args.guest):
        given, missing = (
            ("--inventory", "--guest") if args.inventory else ("--guest", "--inventory")
        )
        raise OptionError(f"{given} needs {missing} (the inventory, and the guest in it)")
    clashing = [option for attr, option in GUEST_OPTIONS if getattr(args, attr)]
    if clashing:
        raise OptionError(
            f"{', '.join(clashing)}: --inventory {args.inventory} says that of {args.guest} "
            "(leave the option out, or --inventory and --guest)"
        )
    fleet = load_inventory(args.inventory).fleet
    (guest,) = select_guests(fleet, [], [args.guest])
    if guest.rehome_to:
        raise OptionError(
            f"--guest {guest.name}: {fleet.source} rehomes it to the dom0 {guest.rehome_to} "
            "(rehome_to): it stays on Xen and gets no libvirt domain"
        )
    return guest, fleet.kvm_hosts[str(guest.kvm_host)]


def refusals(domain: XenDomain) -> list[XenConfigError]:
    """What the migration refuses in ``domain``, each naming its line."""
    found = []
    if domain.type == "hvm":
        key = "type" if "type" in domain.lines else "builder"
        found.append(
            XenConfigError(
                domain.filename,
                domain.lines.get(key),
                key,
                "an HVM domain boots firmware from a whole disk: the migration moves PV "
                "guests with one Xen disk per filesystem only",
            )
        )
    disks = [disk for disk in domain.disks if not disk.cdrom]
    if not disks:
        found.append(
            XenConfigError(
                domain.filename,
                domain.lines.get("disk"),
                "disk",
                "no disk but cdroms or none: there is nothing to migrate (list the guest's "
                "disks in disk = [ ... ])",
            )
        )
    for disk in disks:
        if disk.partition_number is None:
            found.append(
                XenConfigError(
                    domain.filename,
                    disk.line,
                    "disk",
                    f"{disk.vdev} is a whole disk with a partition table of its own (as "
                    "pygrub and HVM guests have): the migration moves one Xen disk per filesystem "
                    f"(xvda1, xvda2, ...) only",
                )
            )
    return found


def write_whole(path: str, text: str, config: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it: whole or not at all."""
    if not path:
        raise OutputError("-o", "an empty file name (give -o FILE, or leave -o out for stdout)")
    target = Path(path)
    parent = target.parent
    try:
        if target.is_dir():
            raise OutputError(path, "is a directory (give a file name, e.g. -o DIR/NAME.xml)")
        if not parent.is_dir():
            raise OutputError(
                path, f"cannot write: the directory {parent} does not exist (create it first)"
            )
        if target.exists() and Path(config).exists() and target.samefile(config):
            raise OutputError(path, "is the Xen config itself (write the XML to another file)")
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(path, f"cannot write: {exc.strerror} (check the path)") from None
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(path, f"cannot write: {exc.strerror} (nothing was written)") from None


# --------------------------------------------------------------------------- the guest


def _name(args: argparse.Namespace, domain: XenDomain) -> str:
    if args.name:
        return args.name
    line = domain.lines.get("name")
    if not domain.name:
        raise XenConfigError(args.config, None, "name", "the config has no name (give --name)")
    if not _valid_name(domain.name):
        fix = f"give --name {_suggested(domain.name) or 'NAME'}"
        raise XenConfigError(
            args.config,
            line,
            "name",
            f"{_shown(domain.name)} is not a libvirt domain name as the inventory writes them:"
            f" lower-case letters, digits, '.' and '-' ({fix})",
        )
    return domain.name


def _guest(args: argparse.Namespace, domain: XenDomain, name: str, lv: str) -> Guest:
    ssh = SshSettings("root", 22, None, None)
    return Guest(
        name=name,
        wave=1,
        xen_host="xen",
        kvm_host="kvm",
        address="",
        ips=tuple(ip for vif in domain.vifs for ip in vif.ip),
        macs=(),
        arch=args.arch or "amd64",
        xen_config=str(Path(args.config).resolve()),
        domain_name=name,
        guest_vg=guest_vg_of(name),
        target_lv=lv,
        layout="matryoshka",
        boot_size=512 * MIB,
        keep_macs=not args.new_macs,
        serial_console=not args.no_serial,
        virt_type=args.virt_type or "kvm",
        machine="pc",
        gateway=None,
        nameservers=(),
        services=(),
        mta=None,
        interface="eth0",
        grow={},
        memory_mib=args.memory,
        vcpus=args.vcpus,
        migration_address=None,
        ssh=ssh,
    )


# --------------------------------------------------------------------------- option types


def _shown(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "..."


def _domain_name(text: str) -> str:
    if not _valid_name(text):
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is not a domain name: use lower-case letters, digits, '.' and "
            f"'-', starting with a letter or digit, at most {MAX_LVM_NAME} characters "
            f"(e.g. --name {_suggested(text) or 'web01'})"
        )
    return text


def _valid_name(text: str) -> bool:
    return bool(NAME_RE.fullmatch(text)) and len(text) <= MAX_LVM_NAME


def _suggested(text: str) -> str | None:
    """A valid name close to ``text`` (``WWW`` -> ``www``), if there is one."""
    hint = re.sub(r"[^a-z0-9.-]+", "-", text.lower()).strip("-.")[:MAX_LVM_NAME]
    return hint if _valid_name(hint) else None


def _bridge(text: str) -> str:
    if not IFACE_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is not an interface name (1 to 15 of A-Z a-z 0-9 _ . : -)"
        )
    return text


def _lvm_name(option: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        if not LVM_NAME_RE.fullmatch(text) or text in (".", "..") or len(text) > MAX_LVM_NAME:
            raise argparse.ArgumentTypeError(
                f"{_shown(text)} is not a valid LVM name (A-Z a-z 0-9 + _ . -, not starting "
                f"with '-', at most {MAX_LVM_NAME})"
            )
        return text

    check.__name__ = option
    return check


def _memory(text: str) -> int:
    try:
        size = parse_size(text, default_unit="M")
    except SizeError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not MIN_MEMORY_MIB * MIB <= size <= MAX_MEMORY_MIB * MIB:
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is outside {MIN_MEMORY_MIB}M to {MAX_MEMORY_MIB // MIB}T"
        )
    if size % MIB:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a whole number of MiB")
    return size // MIB


def _vcpus(text: str) -> int:
    if not re.fullmatch(r"\s*[0-9]{1,5}\s*", text) or not 1 <= int(text) <= MAX_VCPUS:
        raise argparse.ArgumentTypeError(
            f"{_shown(text)} is not a whole number from 1 to {MAX_VCPUS}"
        )
    return int(text)
