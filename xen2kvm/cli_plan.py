"""``xen2kvm plan INVENTORY``: what the deploy derives for each selected guest, offline.

Reads only the inventory (``inventory/NAME.py`` or its ``.yml``), connects nowhere; the
values are the deploy's own (``xen2kvm.fleet_plan``). What needs the live Xen config or
fstab is marked, with the pyinfra command that reads it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import fleet_plan
from .cli_report import add_selection
from .fleet_access import load_inventory, select_guests

DESCRIPTION = """\
Show, per guest, what the deploy derives from the inventory alone: source dom0 and Xen
config, destination and its state directory, the new disk, the libvirt domain, NICs,
bridge, memory, vCPUs, addresses, architecture and kernel package. Connects nowhere.

What only the live Xen config and fstab say (the Xen domain's name, the disks and their
sizes, the filesystems) is marked "read at plan time", with the command that reads it.
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "plan",
        help="show what the deploy derives for each guest from the inventory (offline)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_selection(parser)
    parser.add_argument("--json", action="store_true", help="print JSON, one object per guest")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    inventory = load_inventory(args.inventory)
    guests = select_guests(inventory.fleet, args.wave, args.guest)
    items = [fleet_plan.overview(inventory.fleet, guest) for guest in guests]
    if args.json:
        print(json.dumps([item.as_json() for item in items], indent=2))
    else:
        print(fleet_plan.table(items, deploy_inventory(args.inventory)))
    return 0


def deploy_inventory(path: str) -> str:
    """The pyinfra inventory to name in commands: the one given, or the ``.py`` beside a
    fleet ``.yml`` (pyinfra reads only the former)."""
    given = Path(path)
    if given.suffix == ".py":
        return path
    beside = given.with_suffix(".py")
    return str(beside) if beside.is_file() else "INVENTORY.py"
