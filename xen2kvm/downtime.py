"""A guest's downtime, projected before its cutover from its own journal (pure).

The window is the source's shutdown, the final copy, its integrity check, the fix-ups that
follow and the boot at the destination until SSH answers. Each part is measured where the
journal has measured it before (in this attempt or an earlier one, a rehearsal rolled back,
say); otherwise taken from the other guests' cutovers on the same destination (the median
of each one's last measurement: the same host fixes up, boots and is reached the same way,
and a fleet's guests shut down alike); and before any of those, assumed (the shutdown, the
fix-ups) or configured (the boot, ``boot_time`` in the inventory). The final copy is
projected as long as each filesystem's last warm copy (a catch-up's, where one ran): both
walk the same trees, and once the warm passes have converged the final delta is no larger
than the last warm one (the window's catch-up pass, just before the stop, brings the
guest's changes since the last presync across while it still runs). Its
integrity check, until one was measured, as long as the first warm pass where it reads
every file (``checksum``: the first pass read them all), as the last warm pass where it
compares only metadata (both walk the trees), and so where it is ``staged`` (the metadata,
and the content of the final delta only: the rest was read before the downtime). A
``checksum`` check is projected better from a check that read every file's content at
this destination, a staged check's first half (``integrity-before``, the guest's own or
the other guests'): its seconds per byte of the first warm pass, times the guest's own
first-pass bytes. Before any warm pass there is nothing to project from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from statistics import median

from .journal import (
    ANSWERING,
    DOWNTIME_START,
    FINAL_COPY_DONE,
    PRECHECK_PHASES,
    RECHECK_PHASES,
    ROLLED_BACK,
    Copy,
    filesystem_of,
    is_copy,
    is_integrity,
    is_warm,
    summarise,
)
from .units import human

ASSUMED_SHUTDOWN = 30.0  # seconds, until one is measured
ASSUMED_FIXUPS = 20.0  # seconds from the final copy's end to the disk let go
# The parts one guest's cutover tells of another's on the same destination (not the
# copies nor their checks: those depend on each guest's own files).
SHARED = ("shutdown", "fix-ups", "boot")


@dataclass(frozen=True)
class Part:
    name: str
    seconds: float
    source: str  # measured, assumed, configured, last warm pass (...)
    measured: bool = False  # by a cutover (the guest's own or another guest's here)


@dataclass(frozen=True)
class Projection:
    parts: tuple[Part, ...]

    @property
    def total(self) -> float:
        return sum(part.seconds for part in self.parts)

    def describe(self) -> str:
        """``projected downtime 131 s: shutdown 8 s (measured), ...``"""
        parts = ", ".join(f"{p.name} {p.seconds:.0f} s ({p.source})" for p in self.parts)
        return f"projected downtime {self.total:.0f} s: {parts}"


@dataclass(frozen=True)
class Peers:
    """What the guests' cutovers on one destination measured: for each shared part, one
    ``(guest, seconds)`` per guest, its last measurement; ``besides``'s own not counted
    (the guest being projected)."""

    seen: Mapping[str, tuple[tuple[str, float], ...]]
    besides: str = ""
    # Each guest's content-check rate here (seconds per byte, ``content_rate``).
    rates: tuple[tuple[str, float], ...] = ()

    @classmethod
    def of(
        cls, journals: Mapping[str, list[dict]], besides: str = "", before: float | None = None
    ) -> Peers:
        """From the journals on a destination (guest: records); only what was measured
        before ``before`` (a time), when it is given. Read once per destination: ``but``
        gives each guest's view."""
        seen: dict[str, list[tuple[str, float]]] = {part: [] for part in SHARED}
        rates: list[tuple[str, float]] = []
        for guest in sorted(journals):
            records = journals[guest]
            if before is not None:  # as it was then: its last measurements by then
                records = [r for r in records if float(r.get("time", 0)) < before]
            copies = _all_copies(records)
            found = _measured(records, copies)
            for part in SHARED:
                if part in found:
                    seen[part].append((guest, found[part][0]))
            rate = content_rate(copies)
            if rate is not None:
                rates.append((guest, rate))
        return cls({part: tuple(found) for part, found in seen.items()}, besides, tuple(rates))

    def but(self, guest: str) -> Peers:
        """The same measurements, as ``guest``'s peers (its own not counted)."""
        return Peers(self.seen, guest, self.rates)

    def typical_rate(self) -> tuple[float, str] | None:
        """The others' content-check rate (their median) and whose it is, or None."""
        found = [(g, rate) for g, rate in self.rates if g != self.besides]
        if not found:
            return None
        if len(found) == 1:
            return found[0][1], f"as a content check measured for {found[0][0]} here"
        rate = median(rate for _, rate in found)
        return rate, f"as the median content check of {len(found)} guests here"

    def typical(self, part: str) -> Part | None:
        """The part as the others measured it (their median), or None."""
        found = [(g, seconds) for g, seconds in self.seen.get(part, ()) if g != self.besides]
        if not found:
            return None
        if len(found) == 1:
            return Part(part, found[0][1], f"as measured for {found[0][0]} here", True)
        seconds = median(seconds for _, seconds in found)
        return Part(part, seconds, f"the median of {len(found)} guests measured here", True)


NO_PEERS = Peers({})
# A content check timed over less than this tells too little of a rate (bytes).
RATE_MIN_BYTES = 16 * 1024 * 1024


def content_rate(copies: list[Copy]) -> float | None:
    """Seconds per byte of a check that read every file's content (a staged check's first
    half, ``integrity-before``, each filesystem's last that succeeded), against the bytes
    each of those filesystems' first warm copy moved (it copied every file); None without
    one over ``RATE_MIN_BYTES``."""
    first: dict[str, int] = {}
    checked: dict[str, float] = {}
    for copy in copies:
        phase, _, mountpoint = copy.step.partition(":")
        if is_copy(copy.step, "presync") and copy.rc == 0 and copy.bytes:
            first.setdefault(copy.step, copy.bytes)
        elif phase in PRECHECK_PHASES and copy.rc == 0:
            presync = "rehome-presync" if phase.startswith("rehome-") else "presync"
            checked[f"{presync}:{mountpoint}"] = copy.end - copy.start
    both = [step for step in checked if step in first]
    size = sum(first[step] for step in both)
    if size < RATE_MIN_BYTES:
        return None
    return sum(checked[step] for step in both) / size


INTEGRITY = ("checksum", "staged", "metadata", "skip")


def project(
    records: list[dict],
    boot_time: float,
    integrity: str = "staged",
    peers: Peers = NO_PEERS,
) -> Projection | None:
    """The downtime a cutover would have now, from the guest's whole journal (every
    attempt); None before the first complete warm pass. ``integrity`` is how its final
    copy is checked (the inventory's ``integrity``; ``skip`` with ``skip_integrity``);
    ``peers``, what the other guests' cutovers on its destination measured."""
    if integrity not in INTEGRITY:
        raise ValueError(f"integrity must be one of {', '.join(INTEGRITY)}, not {integrity!r}")
    copies = _all_copies(records)
    first: dict[str, Copy] = {}  # each filesystem's first warm copy (it read every file)
    last: dict[str, Copy] = {}  # each filesystem's last warm copy (a catch-up, perhaps)
    for copy in copies:
        if is_warm(copy.step) and copy.rc == 0:
            first.setdefault(filesystem_of(copy.step), copy)
            last[filesystem_of(copy.step)] = copy
    if not last:
        return None
    copy_seconds = sum(c.end - c.start for c in last.values())
    moved = sum(c.bytes or 0 for c in last.values())
    found = _measured(records, copies)

    def part(name: str, otherwise: float, how: str) -> Part:
        if name in found:
            return Part(name, found[name][0], "measured", True)
        return peers.typical(name) or Part(name, otherwise, how)

    parts = [
        part("shutdown", ASSUMED_SHUTDOWN, "assumed"),
        Part("final copy", copy_seconds, f"as the last warm pass, {human(moved)}"),
    ]
    if integrity == "checksum":
        size = sum(c.bytes or 0 for c in first.values())
        own = content_rate(copies)
        rate = (own, "as its own content check") if own is not None else peers.typical_rate()
        if rate is not None and size:
            guess, how = rate[0] * size, f"{human(size)} {rate[1]}"
        else:
            guess, how = sum(c.end - c.start for c in first.values()), "as the first warm pass"
        parts.append(part("integrity check", guess, how))
    elif integrity != "skip":
        guess = sum(c.end - c.start for c in last.values())
        parts.append(part("integrity check", guess, "as the last warm pass"))
    parts += [
        part("fix-ups", ASSUMED_FIXUPS, "assumed"),
        part("boot", float(boot_time), "configured"),
    ]
    return Projection(tuple(parts))


def at_gate(records: list[dict], start: int) -> int:
    """How far the journal went when the cutover's gate projected the downtime whose
    ``downtime-start`` is ``records[start]`` (or would be there): the records before it,
    but not its window's own between the gate and the stop (a staged check's first half,
    the catch-up pass and its check)."""
    while start > 0 and _window_before_stop(str(records[start - 1].get("step", ""))):
        start -= 1
    return start


def _window_before_stop(step: str) -> bool:
    phase = step.partition(":")[0]
    return is_copy(step, "catchup") or phase in PRECHECK_PHASES + RECHECK_PHASES


def _all_copies(records: list[dict]) -> list[Copy]:
    """Every finished copy of every attempt, in order (a rollback mark between a copy's
    start and end would end its attempt: then it is not counted)."""
    copies: list[Copy] = []
    start = 0
    for end, record in enumerate([*records, {"step": ROLLED_BACK}]):
        if record.get("step") == ROLLED_BACK:
            copies += summarise(records[start:end]).copies
            start = end + 1
    return copies


def _measured(records: list[dict], copies: list[Copy]) -> dict[str, tuple[float, float]]:
    """The last measured shutdown, integrity check, fix-ups and boot, from any attempt:
    each part's seconds, and when it ended."""
    found: dict[str, tuple[float, float]] = {}
    marks: dict[str, float] = {}
    for record in records:
        if record.get("event") != "mark":
            continue
        step, when = record.get("step"), float(record["time"])
        if step == DOWNTIME_START:
            marks = {DOWNTIME_START: when}
            later = [c for c in copies if c.start >= when and is_copy(c.step, "cutover")]
            if later:
                found["shutdown"] = (later[0].start - when, later[0].start)
        elif step == FINAL_COPY_DONE and DOWNTIME_START in marks:
            marks[FINAL_COPY_DONE] = when
            final = [
                c for c in copies
                if marks[DOWNTIME_START] <= c.end <= when
                and (is_copy(c.step, "cutover") or is_integrity(c.step))
            ]  # fmt: skip
            if final:
                found["fix-ups"] = (when - max(c.end for c in final), when)
            checks = [c for c in final if is_integrity(c.step)]
            if checks:
                found["integrity check"] = (sum(c.end - c.start for c in checks), when)
        elif step in ANSWERING and FINAL_COPY_DONE in marks:
            found["boot"] = (when - marks[FINAL_COPY_DONE], when)
    return found
