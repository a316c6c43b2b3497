"""``xen2kvm status INVENTORY``: where each selected guest's move stands, live.

Reads the journals and the running copies' output on the destinations as ``xen2kvm
report`` does (``cli_report.fetch``); ``--watch N`` redraws every N seconds until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from . import status
from .cli_report import add_selection, fetch, guest_report, selection_name
from .fleet_access import load_inventory

sleep = time.sleep  # between two refreshes of --watch


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "status",
        help="show each selected guest's phase, running copy, rate, ETA and downtime",
        description="Read each selected guest's journal and running copy's progress on its "
        "destination (over SSH, as the deploy connects) and print one line per guest.",
    )
    add_selection(parser)
    parser.add_argument(
        "--watch", type=float, metavar="SECONDS", help="refresh every SECONDS until Ctrl-C"
    )
    parser.add_argument("--json", action="store_true", help="print JSON (one snapshot)")
    parser.set_defaults(func=run)
    return parser


def snapshot(args: argparse.Namespace) -> list[status.GuestStatus]:
    inventory = load_inventory(args.inventory)
    fetched = fetch(inventory, args.wave, args.guest, progress=True)
    now = time.time()
    return [
        status.guest_status(guest_report(inventory, f, fetched), f.progress, now) for f in fetched
    ]


def run(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps([s.as_json() for s in snapshot(args)], indent=2))
        return 0
    if not args.watch:
        print(status.table(snapshot(args)))
        return 0
    try:
        while True:
            text = status.table(snapshot(args))
            stamp = time.strftime("%H:%M:%S")
            sys.stdout.write(f"\033[H\033[2J{selection_name(args.wave, args.guest)}  {stamp}\n")
            sys.stdout.write(text + "\n")
            sys.stdout.flush()
            sleep(args.watch)
    except KeyboardInterrupt:
        return 0
