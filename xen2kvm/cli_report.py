"""``xen2kvm report INVENTORY``: the selected guests' journals as report.md and report.html.

The journals are read from each move's destination with plain ``ssh -F <config> HOST``,
the config written from the inventory's own SSH settings (``xen2kvm.fleet_access``):
strict host keys, the deploy's keys and users, no pyinfra connection.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import report
from .errors import Xen2KvmError
from .fleet_access import Inventory, destination, load_inventory, select_guests, ssh_config_text

PROGRESS_MARK = "--x2k-progress--"  # never a journal line (those are JSON objects)


class FetchError(Xen2KvmError):
    """A destination that could not be read over SSH."""


@dataclass(frozen=True)
class Fetched:
    guest: str
    destination: str
    records: list[dict]
    progress: str | None


def add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inventory", metavar="INVENTORY", help="e.g. inventory/prod.py or .yml")
    parser.add_argument(
        "--wave", action="append", type=int, default=[], help="this wave (repeatable)"
    )
    parser.add_argument("--guest", action="append", default=[], help="this guest (repeatable)")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "report",
        help="write report.md and report.html from the selected guests' journals",
        description="Read each selected guest's journal on its destination (over SSH, as "
        "the deploy connects) and write a Markdown and a self-contained HTML report.",
    )
    add_selection(parser)
    parser.add_argument("-o", "--output", default=".", metavar="DIR", help="default: here")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    inventory = load_inventory(args.inventory)
    fetched = fetch(inventory, args.wave, args.guest)
    now = time.time()
    reports = [guest_report(inventory, f, fetched) for f in fetched]
    title = "xen2kvm report: " + selection_name(args.wave, args.guest)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("report.md", "report.html"):
        (out / name).write_text(report.render(f"{name}.j2", reports, now, title))
        print(out / name)
    return 0


def selection_name(waves: Sequence[int], guests: Sequence[str]) -> str:
    parts = [f"wave {', '.join(map(str, waves))}"] if waves else []
    parts += [", ".join(guests)] if guests else []
    return "; ".join(parts) or "all guests"


def fetch(
    inventory: Inventory, waves: Sequence[int], names: Sequence[str], progress: bool = False
) -> list[Fetched]:
    """Each selected guest's journal (and its running copy's output, with ``progress``)."""
    guests = select_guests(inventory.fleet, list(waves), list(names))
    with tempfile.TemporaryDirectory(prefix="x2k-report-") as tmp:
        config = Path(tmp) / "ssh_config"
        config.write_text(ssh_config_text(inventory.host_data, tmp))

        def one(guest_name: str) -> Fetched:
            host, state_dir = destination(inventory.fleet, inventory.fleet.guests[guest_name])
            journal = f"{state_dir}/journal/{guest_name}.jsonl"
            text = read_remote(str(config), host, remote_command(state_dir, guest_name, progress))
            body, _, progress_text = text.partition(f"\n{PROGRESS_MARK}\n")
            records = report.parse_journal(body, f"{host}:{journal}")
            return Fetched(guest_name, host, records, progress_text if progress else None)

        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(one, [guest.name for guest in guests]))


def guest_report(
    inventory: Inventory, found: Fetched, fetched: Sequence[Fetched] = ()
) -> report.GuestReport:
    """One guest's report from its fetched journal, with what the inventory says of it
    (its boot time and integrity check) and the journals ``fetched`` from its destination,
    for its projected downtime."""
    guest = inventory.fleet.guests[found.guest]
    here = {f.guest: f.records for f in fetched if f.destination == found.destination}
    return report.guest_report(
        found.guest,
        found.destination,
        found.records,
        guest.boot_time,
        guest.integrity_check,
        here,
    )


def remote_command(state_dir: str, guest: str, progress: bool) -> str:
    """Print the journal (nothing when there is none yet), then the copy's output's tail."""
    journal = shlex.quote(f"{state_dir}/journal/{guest}.jsonl")
    command = f"if [ -e {journal} ]; then cat -- {journal} || exit 3; fi"
    if progress:
        output = shlex.quote(f"{state_dir}/progress/{guest}")
        command += f"; printf '\\n%s\\n' {PROGRESS_MARK}; tail -c 8192 -- {output} 2>/dev/null"
    return command + "; exit 0"


def read_remote(config: str, host: str, command: str, timeout: float = 60) -> str:
    """``command``'s output on ``host``, reached with ``ssh -F config``."""
    try:
        result = subprocess.run(
            ["ssh", "-F", config, "-o", "ConnectTimeout=10", "--", host, command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise FetchError(f"{host}: no answer over SSH in {timeout:.0f}s: is it up?") from None
    if result.returncode != 0:
        raise FetchError(
            f"{host}: reading the journal failed (ssh exit {result.returncode}): "
            f"{result.stderr.strip() or 'no message'}; check that `ssh -F <config> {host}` "
            "works as the deploy's does (the inventory's ssh_* data, its known_hosts)"
        )
    return result.stdout
