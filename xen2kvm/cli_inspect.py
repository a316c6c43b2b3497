"""``xen2kvm inspect CONFIG [--json]``: show what xen2kvm reads from a Xen domain config."""

from __future__ import annotations

import argparse
import json
import sys

from .cli_convert import refusals
from .guestkinds import rehome_boot_problem, xen_boot
from .xenconfig import XenDisk, XenDomain, XenVif, load_xen_config


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "inspect",
        help="parse a Xen domain config (xm or xl) and show what xen2kvm understood",
        description=(
            "Parse a Xen domain config file without executing it and print a summary "
            "(or JSON). A config that cannot be read is one error naming its line; what "
            "the migration would refuse (HVM, a whole disk, no disk) is a warning on stderr."
        ),
    )
    parser.add_argument(
        "config",
        metavar="CONFIG",
        help="the Xen domain config (xm or xl syntax), e.g. /etc/xen/web01.cfg",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the parsed domain as JSON (memory in MiB)"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    domain = load_xen_config(args.config)
    for problem in refusals(domain):
        print(f"xen2kvm: warning: {problem.located} (convert refuses it)", file=sys.stderr)
    if rehome_boot_problem(boot := xen_boot(domain)):
        print(
            f"xen2kvm: note: {args.config}: boots its own kernel ({boot.kind}): moved to KVM "
            "it boots xen2kvm's grub and the kernel prepare installs; a rehome (rehome_to) "
            "refuses it",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(domain.to_json(), indent=2))
    else:
        print(summary(domain))
    return 0


def summary(domain: XenDomain) -> str:
    """A short human summary: one line per fact, disk and vif."""
    memory = "-" if domain.memory_mib is None else f"{domain.memory_mib} MiB"
    if domain.maxmem_mib is not None:
        memory += f" (max {domain.maxmem_mib} MiB)"
    lines = [
        f"name:   {domain.name or '-'}",
        f"type:   {domain.type}",
        f"memory: {memory}",
        f"vcpus:  {domain.vcpus if domain.vcpus is not None else '-'}",
        f"boot:   {_boot(domain)}",
    ]
    lines += [f"disk:   {_disk(disk)}" for disk in domain.disks]
    lines += [f"vif:    {_vif(vif)}" for vif in domain.vifs]
    return "\n".join(lines)


def _boot(domain: XenDomain) -> str:
    if domain.bootloader:
        return f"bootloader {domain.bootloader}"
    if domain.kernel:
        parts = [f"kernel {domain.kernel}"]
        parts += [f"ramdisk {domain.ramdisk}"] if domain.ramdisk else []
        parts += [f"root {domain.root!r}"] if domain.root else []
        parts += [f"extra {domain.extra!r}"] if domain.extra else []
        return ", ".join(parts)
    return "firmware" if domain.type == "hvm" else "-"


def _disk(disk: XenDisk) -> str:
    kind = "cdrom" if disk.cdrom else "disk"
    backend = disk.backend or "auto"
    target = disk.target or "(empty)"
    return f"{disk.vdev:<6} {kind:<5} {target} [{backend}, {disk.format}, {disk.access}]"


def _vif(vif: XenVif) -> str:
    fields = [
        ("mac", vif.mac),
        ("bridge", vif.bridge),
        ("ip", " ".join(vif.ip)),
        ("model", vif.model),
        ("vifname", vif.vifname),
        ("script", vif.script),
        ("rate", vif.rate),
    ]
    text = " ".join(f"{key}={value}" for key, value in fields if value)
    return text or "(defaults)"
