"""Journal records for the benches' tests, as ``x2k-journal`` (files/x2k-journal.sh)
writes them: its printf, the time as ``date +%s.%N | cut -c1-14`` gives it, and each
action's extra fields. A guest's move, from its warm copies to the end of its cutover."""

from __future__ import annotations

import json

from xen2kvm.journal import CUTOVER_COMPLETE, DOWNTIME_START, FINAL_COPY_DONE, KVM_ANSWERING

T = 1_733_000_000.0  # a time as the KVM host's clock gives it


def rec(guest: str, step: str, event: str, time: float, extra: str = "") -> dict:
    """One record: the line ``record`` prints, read back as the deploy reads it."""
    stamp = f"{time:.3f}"[:14]
    line = '{"guest":"%s","step":"%s","event":"%s","time":%s%s}' % (  # noqa: UP031
        guest,
        step,
        event,
        stamp,
        extra,
    )
    return json.loads(line)


def copy(guest: str, step: str, start: float, end: float, size: int, rc: int = 0) -> list[dict]:
    """A copy step (``x2k-journal ... run rsync --stats``): its end has rc and bytes."""
    return [
        rec(guest, step, "start", start),
        rec(guest, step, "end", end, f',"rc":{rc},"bytes":{size}'),
    ]


def check(guest: str, step: str, start: float, end: float, differences: int = 0) -> list[dict]:
    """An integrity step (``x2k-journal ... check``): rc and differences, no bytes."""
    return [
        rec(guest, step, "start", start),
        rec(guest, step, "end", end, f',"rc":0,"differences":{differences}'),
    ]


def mark(guest: str, step: str, time: float) -> dict:
    """A milestone (``x2k-journal ... mark``)."""
    return rec(guest, step, "mark", time)


def move(
    guest: str,
    at: float,
    shutdown: float,
    copies: dict[str, tuple[float, int]],
    checks: dict[str, float],
    fixups: float,
    boot: float,
) -> list[dict]:
    """A guest's warm copies (a first pass, then a converged one), then its cutover from
    ``at``: the shutdown (with the set-up), each final copy (seconds, bytes), each
    integrity check (seconds), the fix-ups, the start and boot, then its announce."""
    records: list[dict] = []
    when = at - 600
    for mountpoint, (_, size) in copies.items():
        records += copy(guest, f"presync:{mountpoint}", when, when + 100, size * 20)
        when += 101
    for mountpoint, (_, size) in copies.items():
        records += copy(guest, f"presync:{mountpoint}", when, when + 10, size)
        when += 11
    records.append(mark(guest, DOWNTIME_START, at))
    when = at + shutdown
    for mountpoint, (seconds, size) in copies.items():
        records += copy(guest, f"cutover:{mountpoint}", when, when + seconds, size)
        when += seconds
    for mountpoint, seconds in checks.items():
        records += check(guest, f"integrity:{mountpoint}", when, when + seconds)
        when += seconds
    records.append(mark(guest, FINAL_COPY_DONE, when + fixups))
    records.append(mark(guest, KVM_ANSWERING, when + fixups + boot))
    records.append(mark(guest, CUTOVER_COMPLETE, when + fixups + boot + 4))
    return records
