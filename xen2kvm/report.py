"""What a wave's journals say, per guest, as a Markdown and an HTML report (pure: no pyinfra).

Each move's journal (``xen2kvm.journal``) lives on its destination; ``xen2kvm report``
fetches them (``xen2kvm.cli_report``) and hands the records here. From them: the guest's
state, its copies (open ones drawn up to ``now``), the intervals between milestones, the
downtime, and a timeline's geometry on an axis shared by every guest.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2

from .downtime import NO_PEERS, Peers, at_gate, project
from .errors import Xen2KvmError
from .journal import (
    ANSWERING,
    CUTOVER_COMPLETE,
    DOWNTIME_START,
    FINAL_COPY_DONE,
    INTEGRITY_SKIPPED,
    REHOME_COMPLETE,
    ROLLED_BACK,
    Summary,
    current,
    is_copy,
    is_warm,
    summarise,
    warm_passes,
)
from .render import templates
from .units import human

# A guest's state, from its milestones.
NOT_STARTED = "not started"
PRESYNC = "presync"
IN_CUTOVER = "in cutover"
MOVED = "moved"
ROLLED_BACK_STATE = "rolled back"


class JournalReadError(Xen2KvmError):
    """A journal line that is not one of x2k-journal's records."""


def parse_journal(text: str, where: str) -> list[dict]:
    """The records of a journal's text; ``where`` (``host:path``) names it in errors."""
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            record = None
            reason = str(exc)
        else:
            reason = "not an object with a step, an event and a time"
        if not isinstance(record, dict) or not {"step", "event", "time"} <= record.keys():
            raise JournalReadError(
                f"{where}:{number}: {reason}; only x2k-journal writes journals: "
                "look at that line on the host (a hand edit?) and remove it"
            )
        records.append(record)
    return records


# --- one guest -----------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    """A copy or a phase between milestones; ``end`` is None while it runs."""

    name: str
    kind: str  # "presync", "cutover" (copies) or "phase"
    start: float
    end: float | None
    bytes: int | None = None
    rc: int | None = None

    def duration(self, now: float) -> float:
        return (self.end if self.end is not None else now) - self.start


@dataclass(frozen=True)
class GuestReport:
    guest: str
    destination: str
    state: str
    copies: tuple[Span, ...] = ()
    phases: tuple[Span, ...] = ()
    presync_passes: tuple[int, ...] = ()  # bytes per presync pass (all filesystems)
    final_delta: int | None = None  # bytes of the final copies
    downtime: float | None = None  # finished: shutdown to answering
    downtime_start: float | None = None
    downtime_end: float | None = None
    attempts: int = 1  # a rollback starts a new attempt
    # What its integrity checks found (see ``integrity``); the verify results, where
    # present (None today).
    integrity: str = "-"
    projected_downtime: float | None = None
    verify: Mapping[str, Any] | None = None

    @property
    def open_steps(self) -> tuple[Span, ...]:
        return tuple(span for span in self.copies if span.end is None)

    @property
    def steps(self) -> tuple[Span, ...]:
        """Copies and phases in the order they started."""
        return tuple(sorted((*self.copies, *self.phases), key=lambda span: span.start))

    def downtime_so_far(self, now: float) -> float | None:
        """The downtime, or while the guest is down, how long it has been down."""
        if self.downtime is not None or self.downtime_start is None:
            return self.downtime
        return now - self.downtime_start if self.state == IN_CUTOVER else None


def copy_spans(records: list[dict]) -> tuple[Span, ...]:
    """The copies of the current attempt, finished, stopped or still running."""
    spans: list[Span] = []
    running: dict[str, float] = {}
    for record in current(records):
        step, event = record.get("step"), record.get("event")
        if not isinstance(step, str) or not is_copy(step):
            continue
        if event == "start":
            running[step] = float(record["time"])
        elif event in ("end", "stopped") and step in running:
            rc = int(record.get("rc", -1)) if event == "end" else -1
            spans.append(
                _copy(step, running.pop(step), float(record["time"]), record.get("bytes"), rc)
            )
    spans += [_copy(step, start, None, None, None) for step, start in running.items()]
    return tuple(sorted(spans, key=lambda span: span.start))


def _copy(step: str, start: float, end: float | None, size: Any, rc: int | None) -> Span:
    kind = "presync" if is_warm(step) else "cutover"  # a catch-up is a warm pass
    return Span(step, kind, start, end, int(size) if size is not None else None, rc)


def presync_passes(copies: Iterable[Span]) -> tuple[int, ...]:
    """Bytes per warm pass, the catch-up's included (``xen2kvm.journal.warm_passes``),
    finished copies only."""
    done = [span for span in copies if span.end is not None]
    grouped = warm_passes(done, step=lambda span: span.name)
    return tuple(sum(span.bytes or 0 for span in group) for group in grouped)


def phase_spans(marks: Mapping[str, float], copies: Sequence[Span]) -> tuple[Span, ...]:
    """The intervals of a cutover between its milestones; the last one reached is open."""
    final = [span for span in copies if span.kind == "cutover"]
    final_start = min((span.start for span in final), default=None)
    final_end = None
    if final and all(span.end is not None for span in final):
        final_end = max(span.end for span in final if span.end is not None)
    answering = next((marks[m] for m in ANSWERING if m in marks), None)
    complete = marks.get(CUTOVER_COMPLETE, marks.get(REHOME_COMPLETE))
    points = [
        ("shutdown", marks.get(DOWNTIME_START), final_start),
        ("final copy", final_start, final_end),
        ("fix-ups", final_end, marks.get(FINAL_COPY_DONE)),
        ("boot", marks.get(FINAL_COPY_DONE), answering),
        ("announce", answering, complete),
    ]
    spans = []
    for name, start, end in points:
        if start is None:
            break
        spans.append(Span(name, "phase", start, end))
        if end is None:
            break
    return tuple(spans)


def guest_state(records: list[dict]) -> str:
    marks = summarise(records).marks
    if not records:
        return NOT_STARTED
    if not current(records):
        return ROLLED_BACK_STATE
    if CUTOVER_COMPLETE in marks or REHOME_COMPLETE in marks:
        return MOVED
    if DOWNTIME_START in marks:
        return IN_CUTOVER
    return PRESYNC


def guest_report(
    guest: str,
    destination: str,
    records: list[dict],
    boot_time: int = 90,
    integrity_check: str = "staged",
    journals: Mapping[str, list[dict]] | None = None,
) -> GuestReport:
    """What one guest's journal says (``records`` empty: the move has not started). Its
    projected downtime is the one the journal gave just before its cutover began (or
    now, before it); ``boot_time`` is the guest's, from the inventory; ``journals``, those
    of the other guests on its destination (guest: records), what their cutovers had
    measured by then."""
    summary = summarise(records)
    copies = copy_spans(records)
    finished_final = [s for s in copies if s.kind == "cutover" and s.end is not None]
    answering = next((summary.marks[m] for m in ANSWERING if m in summary.marks), None)
    return GuestReport(
        guest=guest,
        destination=destination,
        state=guest_state(records),
        copies=copies,
        phases=phase_spans(summary.marks, copies),
        presync_passes=presync_passes(copies),
        final_delta=sum(s.bytes or 0 for s in finished_final) if finished_final else None,
        downtime=summary.downtime,
        downtime_start=summary.marks.get(DOWNTIME_START),
        downtime_end=answering,
        attempts=1 + sum(1 for r in records if r.get("step") == ROLLED_BACK),
        integrity=integrity(summary),
        projected_downtime=projected(records, boot_time, integrity_check, guest, journals),
    )


def integrity(summary: Summary) -> str:
    """What the current attempt's integrity checks found: ``0 differences (/, /var)``,
    ``3 differences in /var``, ``skipped``, ``-`` before any."""
    if INTEGRITY_SKIPPED in summary.marks:
        return "skipped"
    found = summary.integrity
    if not found:
        return "-"
    failed = [mountpoint for mountpoint, count in found.items() if count is None]
    if failed:
        return f"did not complete in {', '.join(failed)}"
    differing = {mountpoint: count for mountpoint, count in found.items() if count}
    if differing:
        return "; ".join(f"{count} differences in {where}" for where, count in differing.items())
    return f"0 differences ({', '.join(found)})"


def projected(
    records: list[dict],
    boot_time: int,
    integrity_check: str = "staged",
    guest: str = "",
    journals: Mapping[str, list[dict]] | None = None,
) -> float | None:
    """The downtime projected from the journal as it was when the current attempt's
    cutover began (the whole journal, before its gate: ``at_gate``), with what the other
    guests' cutovers on its destination (``journals``) had measured by then."""
    attempt = len(records) - len(current(records))
    start = next(
        (
            i
            for i in range(attempt, len(records))
            if records[i].get("step") == DOWNTIME_START and records[i].get("event") == "mark"
        ),
        len(records),
    )
    start = at_gate(records, start)
    before = float(records[start]["time"]) if start < len(records) else None
    peers = Peers.of(journals, besides=guest, before=before) if journals else NO_PEERS
    found = project(records[:start], boot_time, integrity_check, peers)
    return found.total if found else None


# --- the timeline --------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    lane: int  # 0: copies, 1: phases
    css: str
    label: str


@dataclass(frozen=True)
class Row:
    guest: str
    y: float
    bars: tuple[Bar, ...]
    downtime: Bar | None


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    left: int  # where the axis starts (guest names on its left)
    rows: tuple[Row, ...]
    ticks: tuple[tuple[float, str], ...]


ROW_HEIGHT = 34
TOP = 24


def timeline(reports: Sequence[GuestReport], now: float, width: int = 1200) -> Timeline:
    """Bars on one time axis for all guests: open spans reach ``now``."""
    left, right = 150, width - 50
    times = [t for r in reports for s in (*r.copies, *r.phases) for t in (s.start, s.end)]
    known = [t for t in times if t is not None]
    start = min(known, default=now)
    end = max([*known, now] if None in times else known, default=now)
    scale = (right - left) / max(end - start, 1.0)

    def bar(begin: float, finish: float | None, lane: int, css: str, label: str) -> Bar:
        x = left + (begin - start) * scale
        span = ((finish if finish is not None else now) - begin) * scale
        return Bar(round(x, 1), round(max(span, 2.0), 1), lane, css, label)

    rows = []
    for index, report in enumerate(reports):
        bars = [
            bar(s.start, s.end, 0 if s.kind != "phase" else 1, _css(s), _label(s, now))
            for s in (*report.copies, *report.phases)
        ]
        window = None
        if report.downtime_start is not None:
            finish = report.downtime_end
            label = "downtime " + (duration(report.downtime) if report.downtime else "so far")
            window = bar(report.downtime_start, finish, 0, "downtime", label)
        rows.append(Row(report.guest, TOP + index * ROW_HEIGHT, tuple(bars), window))
    ticks = tuple(
        (round(left + i * (right - left) / 4, 1), _clock(start + i * (end - start) / 4))
        for i in range(5)
    )
    return Timeline(width, TOP + len(reports) * ROW_HEIGHT + 24, left, tuple(rows), ticks)


def _css(span: Span) -> str:
    css = span.kind if span.kind != "phase" else "phase phase-" + span.name.replace(" ", "-")
    css += " open" if span.end is None else ""
    return css + (" failed" if span.rc not in (None, 0) else "")


def _label(span: Span, now: float) -> str:
    text = f"{span.name}: {duration(span.duration(now))}"
    text += f", {human(span.bytes)}" if span.bytes is not None else ""
    text += " (running)" if span.end is None else ""
    return text + (f" (rc {span.rc})" if span.rc not in (None, 0) else "")


# --- formatting and rendering --------------------------------------------------------


def duration(seconds: float | None) -> str:
    """``4.2s``, ``3m05s``, ``2h01m``; ``-`` for None."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    return f"{minutes // 60}h{minutes % 60:02d}m"


def size(value: int | None) -> str:
    return "-" if value is None else human(value)


def _clock(when: float | None) -> str:
    return "-" if when is None else time.strftime("%H:%M:%S", time.gmtime(when))


def _stamp(when: float | None) -> str:
    return "-" if when is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(when))


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = templates(("html", "html.j2"))
    env.filters.update(duration=duration, size=size, clock=_clock, stamp=_stamp)
    env.filters["cell"] = lambda value: str(value).replace("|", "\\|").replace("\n", " ")
    return env


def render(name: str, reports: Sequence[GuestReport], now: float, title: str) -> str:
    """``report.md.j2`` or ``report.html.j2`` for ``reports`` as they stood at ``now``."""
    return (
        environment()
        .get_template(name)
        .render(reports=reports, now=now, title=title, timeline=timeline(reports, now))
    )
