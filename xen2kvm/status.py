"""Where each guest's move stands right now (pure: no pyinfra).

From the journal (``xen2kvm.report`` reads it) and the output of the copy that runs, which
``x2k-journal`` keeps in ``<state_dir>/progress/<guest>``: rsync's ``--info=progress2``
writes one ``\\r``-separated line per update, e.g. ``  1,234,567  45%   12.34MB/s    0:00:10``
(bytes so far, percent of the total, rate, time left). The total comes from the percentage;
with rsync's incremental file list it grows while the list does, so early ETAs are low.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from .report import GuestReport, duration, size

_PROGRESS = re.compile(
    r"^\s*(?P<bytes>[\d,.]+)\s+(?P<percent>\d+)%\s+(?P<rate>[\d.,]+)(?P<unit>[kMGT]?B)/s\s+"
    r"(?P<left>\d+:\d\d:\d\d)"
)
_UNITS = {"B": 1, "kB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


@dataclass(frozen=True)
class Progress:
    """The last progress line of a running rsync."""

    bytes: int
    percent: int
    rate: float  # bytes a second
    left: str  # rsync's own estimate, H:MM:SS

    @property
    def total(self) -> int | None:
        return round(self.bytes * 100 / self.percent) if self.percent else None

    @property
    def eta(self) -> float | None:
        total = self.total
        if total is None or self.rate <= 0:
            return None
        return max(total - self.bytes, 0) / self.rate


def parse_progress(text: str) -> Progress | None:
    """The last ``--info=progress2`` update in an rsync's output; None if there is none."""
    for line in reversed(re.split(r"[\r\n]", text)):
        match = _PROGRESS.match(line)
        if match:
            # rsync 3 prints 1024-based rates; it writes a number with "," as thousands
            # separator, or "." in some locales.
            rate = float(match["rate"].replace(",", ""))
            return Progress(
                bytes=int(re.sub(r"[,.]", "", match["bytes"])),
                percent=int(match["percent"]),
                rate=rate * _UNITS[match["unit"]],
                left=match["left"],
            )
    return None


@dataclass(frozen=True)
class GuestStatus:
    guest: str
    destination: str
    state: str
    step: str | None  # the copy that runs (its start without an end)
    running_for: float | None
    copied: int | None  # bytes the running copy moved so far
    total: int | None
    rate: float | None
    eta: float | None
    downtime: float | None  # finished, or so far while the guest is down
    down: bool  # the guest is down now: ``downtime`` is so far
    projected_downtime: float | None = None
    integrity: str = "-"  # what its integrity checks found (report.integrity)

    def as_json(self) -> dict:
        return asdict(self)


def guest_status(report: GuestReport, progress_text: str | None, now: float) -> GuestStatus:
    """One guest's live status: its report as of ``now`` and its running copy's output."""
    running = report.open_steps[-1] if report.open_steps else None
    progress = parse_progress(progress_text or "") if running is not None else None
    return GuestStatus(
        guest=report.guest,
        destination=report.destination,
        state=report.state,
        step=running.name if running else None,
        running_for=running.duration(now) if running else None,
        copied=progress.bytes if progress else None,
        total=progress.total if progress else None,
        rate=progress.rate if progress else None,
        eta=progress.eta if progress else None,
        downtime=report.downtime_so_far(now),
        down=report.downtime is None and report.downtime_so_far(now) is not None,
        projected_downtime=report.projected_downtime,
        integrity=report.integrity,
    )


COLUMNS = ("GUEST", "DEST", "STATE", "STEP", "FOR", "COPIED", "RATE", "ETA", "DOWNTIME")


def table(statuses: Sequence[GuestStatus]) -> str:
    """Plain aligned text, one guest a line."""
    rows = [COLUMNS] + [_row(status) for status in statuses]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _row(status: GuestStatus) -> tuple[str, ...]:
    copied = "-"
    if status.copied is not None:
        copied = size(status.copied)
        if status.total:
            copied += f"/{size(status.total)} ({100 * status.copied // status.total}%)"
    rate = f"{size(round(status.rate))}/s" if status.rate is not None else "-"
    downtime = duration(status.downtime)
    downtime += " so far" if status.down else ""
    return (
        status.guest,
        status.destination,
        status.state,
        status.step or "-",
        duration(status.running_for),
        copied,
        rate,
        duration(status.eta),
        downtime,
    )
