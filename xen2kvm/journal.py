"""The migration journal's vocabulary and how to read it (pure: no pyinfra).

Every move keeps a journal on its destination host (the KVM host, or the new dom0 of a
rehomed guest): ``<state_dir>/journal/<guest>.jsonl``, one JSON record a line, written
only by ``x2k-journal`` (``files/x2k-journal.sh``). A record is a step's ``start`` and
``end`` (with its exit code and the bytes rsync moved), a ``mark`` (a milestone reached),
or ``stopped`` (a copy a dead run left running, stopped by the next run).

The step names are a closed set, owned here: the milestones below, one copy step per
filesystem, ``<copy phase>:<mountpoint>`` (warm: ``presync``, and ``catchup``, the last
warm pass at the start of the guest's window; final: ``cutover``), and one integrity check
per filesystem after the final copy, ``integrity:<mountpoint>`` (its end record holds the
``differences`` found), with, for a staged check, its first half before the downtime,
``integrity-before:<mountpoint>``, and what the catch-up pass brought since, checked
just before the stop, ``integrity-catchup:<mountpoint>``. The deploy decides what is left
to do from these records, so nothing else may name a step: a name that is not in the
vocabulary is refused when written and when read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

TOOL = "/usr/local/sbin/x2k-journal"  # installed on each destination host

# Milestones, in the order a move reaches them.
DOWNTIME_START = "downtime-start"  # the source guest's shutdown begins
FINAL_COPY_DONE = "final-copy-done"  # the new disk is complete and let go
KVM_ANSWERING = "kvm-answering"  # downtime ends: SSH answers under KVM
GUEST_ANSWERING = "guest-answering"  # downtime ends: SSH answers on the new dom0
CUTOVER_COMPLETE = "cutover-complete"  # on KVM, addresses announced: the move is done
REHOME_COMPLETE = "rehome-complete"  # on the new dom0, addresses announced
ROLLED_BACK = "rolled-back"  # back on the source dom0: a later run starts afresh
INTEGRITY_SKIPPED = "integrity-skipped"  # the inventory skips its check (skip_integrity)
# The fix-ups are current with every copy so far: marked again after each round of them,
# with the ones redone ("redone"); the destination keeps what each copy changed until then.
FIXUPS_DONE = "fixups-done"

MILESTONES = (
    DOWNTIME_START,
    FINAL_COPY_DONE,
    KVM_ANSWERING,
    GUEST_ANSWERING,
    CUTOVER_COMPLETE,
    REHOME_COMPLETE,
    ROLLED_BACK,
    INTEGRITY_SKIPPED,
    FIXUPS_DONE,
)
ANSWERING = (KVM_ANSWERING, GUEST_ANSWERING)  # the downtime's end, whichever destination

# Copy steps: one rsync per filesystem, warm (presync, or catchup: the last warm pass, at
# the start of a guest's window, while it still runs) or final (cutover); a rehome's copies
# carry their own prefix (their journal is on the new dom0).
COPY_PHASES = (
    "presync", "catchup", "cutover", "rehome-presync", "rehome-catchup", "rehome-cutover",
)  # fmt: skip
WARM_PHASES = ("presync", "catchup")
# The copies whose changes x2k-journal keeps for the window's fix-ups (only those the
# copies since the last fix-ups touched are redone): the window's own, and the catch-up
# just before it.
LISTING_PHASES = ("catchup", "cutover")
# Integrity checks: the final copy compared with the stopped source, one per filesystem.
CHECK_PHASES = ("integrity", "rehome-integrity")
# A staged check's first half (``integrity: staged``): the warm copy's content compared
# with the running guest before the downtime; not in the window, so not one of the above.
PRECHECK_PHASES = ("integrity-before", "rehome-integrity-before")
# Its catch-up half: the content the catch-up pass brought since, against the running
# guest, just before the stop (the window's half then reads only what the final copy
# wrote); not in the window either.
RECHECK_PHASES = ("integrity-catchup", "rehome-integrity-catchup")
_COPY = re.compile(r"(?P<phase>[a-z-]+):(?P<mountpoint>/[A-Za-z0-9/_.@+-]*)")


class JournalError(ValueError):
    """A step name outside the vocabulary, or a record that is not one of ours."""


def copy_step(phase: str, mountpoint: str) -> str:
    """The journal's name for the copy of one filesystem (``presync:/var``)."""
    return check_step(f"{phase}:{mountpoint}")


def integrity_step(prefix: str, mountpoint: str) -> str:
    """The journal's name for the integrity check of one filesystem (``integrity:/var``;
    ``rehome-`` as ``prefix`` for a rehome)."""
    return check_step(f"{prefix}integrity:{mountpoint}")


def precheck_step(prefix: str, mountpoint: str) -> str:
    """The journal's name for the check of one filesystem before the downtime
    (``integrity-before:/var``; ``rehome-`` as ``prefix`` for a rehome)."""
    return check_step(f"{prefix}integrity-before:{mountpoint}")


def recheck_step(prefix: str, mountpoint: str) -> str:
    """The journal's name for the check, just before the downtime, of what the catch-up
    pass brought to one filesystem (``integrity-catchup:/var``; ``rehome-`` as
    ``prefix`` for a rehome)."""
    return check_step(f"{prefix}integrity-catchup:{mountpoint}")


def is_integrity(step: str) -> bool:
    """Whether ``step`` is an integrity check."""
    match = _COPY.fullmatch(step)
    return match is not None and match["phase"] in CHECK_PHASES


def check_step(step: object) -> str:
    """``step`` if it is in the vocabulary; a mountpoint with anything but plain path
    characters (quotes, spaces, control characters) or a ``..`` is not."""
    if isinstance(step, str) and step in MILESTONES:
        return step
    match = _COPY.fullmatch(step) if isinstance(step, str) else None
    if (
        match is None
        or match["phase"] not in COPY_PHASES + CHECK_PHASES + PRECHECK_PHASES + RECHECK_PHASES
        or ".." in match["mountpoint"].split("/")
        or "//" in match["mountpoint"]
    ):
        raise JournalError(f"not a journal step name: {step!r}")
    return step


def is_copy(step: str, phase: str | None = None) -> bool:
    """Whether ``step`` is a copy (of ``phase``, when given: ``presync``, ``catchup`` or
    ``cutover``, a rehome's included)."""
    match = _COPY.fullmatch(step)
    if match is None or match["phase"] not in COPY_PHASES:
        return False
    return phase is None or match["phase"].removeprefix("rehome-") == phase


def is_warm(step: str) -> bool:
    """Whether ``step`` is a warm copy, from the running guest (``presync``, ``catchup``)."""
    return any(is_copy(step, phase) for phase in WARM_PHASES)


def lists_changes(step: str) -> bool:
    """Whether ``step`` is a copy whose changes x2k-journal keeps (``LISTING_PHASES``)."""
    return any(is_copy(step, phase) for phase in LISTING_PHASES)


def filesystem_of(step: str) -> str:
    """The filesystem a copy step copies, named by its first warm copy's step (a catch-up
    copy of ``/var`` is ``presync:/var``'s filesystem; a rehome's keep their prefix)."""
    phase, _, mountpoint = step.partition(":")
    rehome = "rehome-" if phase.startswith("rehome-") else ""
    return f"{rehome}presync:{mountpoint}"


# --- reading -----------------------------------------------------------------------


def redone(
    records: list[dict], touched: list[str], fixups: dict[str, tuple[str, ...]]
) -> list[str]:
    """The fix-ups that must run (again) after the copies: all of them the first time in
    an attempt (no ``fixups-done`` in it: only the copies since one have their changes
    kept), else those whose files a copy since the last ones ``touched``
    (``MigrationChanges``; ``*``: any)."""
    if not done(records, FIXUPS_DONE) or "*" in touched:
        return list(fixups)
    return [name for name, paths in fixups.items() if set(paths) & set(touched)]


def fixups_current(records: list[dict]) -> bool:
    """Whether the last record of a copy or of the fix-ups, in the current attempt, is a
    ``fixups-done``: no copy ran since."""
    for record in reversed(current(records)):
        step = record.get("step", "")
        if step == FIXUPS_DONE and record.get("event") == "mark":
            return True
        if is_copy(step):
            return False
    return False


def current(records: list[dict]) -> list[dict]:
    """The records of the current attempt: a rollback starts the move afresh."""
    last = max((i for i, r in enumerate(records) if r.get("step") == ROLLED_BACK), default=-1)
    return records[last + 1 :]


def done(records: list[dict], step: str) -> bool:
    """Whether ``step`` finished in the current attempt (a mark, or a run ending with rc 0)."""
    return any(
        r.get("step") == step
        and (r.get("event") == "mark" or (r.get("event") == "end" and r.get("rc") == 0))
        for r in current(records)
    )


@dataclass(frozen=True)
class Copy:
    """One finished command of one filesystem: an rsync (a copy step), or an integrity
    check with the ``differences`` it found."""

    step: str
    start: float
    end: float
    rc: int
    bytes: int | None
    differences: int | None = None


@dataclass(frozen=True)
class Summary:
    """What a journal says about a move, in its current attempt."""

    copies: tuple[Copy, ...] = ()
    marks: dict[str, float] = field(default_factory=dict)

    @property
    def downtime(self) -> float | None:
        """From the source's shutdown to SSH answering on the destination."""
        start = self.marks.get(DOWNTIME_START)
        end = next((self.marks[m] for m in ANSWERING if m in self.marks), None)
        return end - start if start is not None and end is not None else None

    @property
    def integrity(self) -> dict[str, int | None]:
        """Each filesystem's last integrity check: its differences (``None``: it did not
        complete), by mountpoint."""
        found: dict[str, int | None] = {}
        for check in self.copies:
            if is_integrity(check.step):
                mountpoint = check.step.split(":", 1)[1]
                found[mountpoint] = check.differences if check.rc == 0 else None
        return found

    def copied(self, phase: str) -> int:
        """Bytes the successful copies of ``phase`` (presync, catchup, cutover) moved."""
        return sum(c.bytes or 0 for c in self.copies if c.rc == 0 and is_copy(c.step, phase))


def warm_passes(copies: Iterable[Any], step: Callable[[Any], str] | None = None) -> list[list[Any]]:
    """The warm copies (``is_warm``) grouped into passes, in order: a pass copies each
    filesystem once, so a filesystem copied again starts the next pass, and so does a
    catch-up (a pass of its own). ``step`` gives a copy's step name (default: its
    ``step`` attribute)."""
    name = step or (lambda copy: copy.step)
    grouped: list[list[Any]] = []
    seen: set[str] = set()
    kind = ""
    for copy in copies:
        if not is_warm(name(copy)):
            continue
        filesystem, was = filesystem_of(name(copy)), kind
        kind = "catchup" if is_copy(name(copy), "catchup") else "presync"
        if not grouped or filesystem in seen or kind != was:
            grouped.append([])
            seen = set()
        seen.add(filesystem)
        grouped[-1].append(copy)
    return grouped


def summarise(records: list[dict]) -> Summary:
    """The copies and the first time of each milestone, in the current attempt."""
    started: dict[str, float] = {}
    copies = []
    marks: dict[str, float] = {}
    for record in current(records):
        step, event = record.get("step"), record.get("event")
        if event == "mark" and step not in marks:
            marks[step] = float(record["time"])
        elif event == "start":
            started[step] = float(record["time"])
        elif event == "end" and step in started:
            copies.append(
                Copy(
                    step=step,
                    start=started.pop(step),
                    end=float(record["time"]),
                    rc=int(record.get("rc", -1)),
                    bytes=record.get("bytes"),
                    differences=record.get("differences"),
                )
            )
    return Summary(copies=tuple(copies), marks=marks)
