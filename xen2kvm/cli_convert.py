"""``xen2kvm convert CFG``: print the KVM domain XML for a Xen domain config.

It needs neither Xen nor libvirt: the config is parsed by our own parser and the XML
rendered from the same template the migration uses. Options stand in for what the
inventory would say (bridge, host VG and LV, MACs, memory, vCPUs).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .errors import PlanError, SizeError, Xen2KvmError
from .inventory import GUEST_ARCHES, IFACE_RE, LVM_NAME_RE, NAME_RE, Guest, KvmHost, SshSettings
from .planner import plan_domain
from .render import domain_xml
from .units import MIB, parse_size
from .xenconfig import load_xen_config


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "convert",
        help="print the libvirt domain XML for a Xen domain config",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("config", help="the Xen domain config file (xm or xl syntax)")
    parser.add_argument("--name", help="domain name (default: the config's name)")
    parser.add_argument("--bridge", default="br0", help="libvirt bridge (default: br0)")
    parser.add_argument("--vg", default="vg0", help="the KVM host's VG (default: vg0)")
    parser.add_argument("--lv", help="the guest's LV on the KVM host (default: its name)")
    parser.add_argument("--virt-type", choices=("kvm", "qemu"), default="kvm")
    parser.add_argument("--new-macs", action="store_true", help="do not keep the Xen MACs")
    parser.add_argument("--memory", help="memory, e.g. 2G (default: from the config)")
    parser.add_argument("--vcpus", type=int, help="vCPUs (default: from the config)")
    parser.add_argument("--arch", choices=GUEST_ARCHES, default="amd64")
    parser.add_argument("--no-serial", action="store_true", help="no serial console")
    parser.add_argument("-o", "--output", help="write the XML here instead of stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    domain = load_xen_config(args.config)
    name = args.name or domain.name
    if not name:
        raise Xen2KvmError(f"{args.config}: the config has no name: give --name")
    if not NAME_RE.match(name):
        raise PlanError(name, "name", "must match ^[a-z0-9][a-z0-9.-]*$ (give --name)")
    lv = args.lv or name
    for flag, value, pattern in (("--vg", args.vg, LVM_NAME_RE), ("--lv", lv, LVM_NAME_RE)):
        if not pattern.match(value):
            raise PlanError(name, flag, f"not a valid LVM name: {value!r}")
    if not IFACE_RE.match(args.bridge):
        raise PlanError(name, "--bridge", f"not an interface name: {args.bridge!r}")
    try:
        memory = parse_size(args.memory, default_unit="M") // MIB if args.memory else None
    except SizeError as exc:
        raise PlanError(name, "--memory", str(exc)) from None
    if args.vcpus is not None and args.vcpus < 1:
        raise PlanError(name, "--vcpus", "must be 1 or more")

    ssh = SshSettings("root", 22, None, None)
    kvm = KvmHost("kvm", "", None, args.vg, args.bridge, "qemu:///system", "/var/lib/xen2kvm", ssh)
    guest = Guest(
        name=name,
        wave=1,
        xen_host="xen",
        kvm_host="kvm",
        address="",
        ips=tuple(ip for vif in domain.vifs for ip in vif.ip),
        macs=(),
        arch=args.arch,
        xen_config=str(Path(args.config).resolve()),
        domain_name=name,
        guest_vg=name.split(".")[0],
        target_lv=lv,
        layout="matryoshka",
        boot_size=512 * MIB,
        keep_macs=not args.new_macs,
        serial_console=not args.no_serial,
        virt_type=args.virt_type,
        machine="pc",
        gateway=None,
        nameservers=(),
        services=(),
        mta=None,
        interface="eth0",
        grow={},
        memory_mib=memory,
        vcpus=args.vcpus,
        migration_address=None,
        ssh=ssh,
    )
    xml = domain_xml(plan_domain(guest, kvm, domain), "-", guest.xen_config)
    if args.output:
        Path(args.output).write_text(xml)
    else:
        print(xml, end="")
    return 0
