"""A guest's downtime, projected before its cutover from its own journal (pure).

The window is the source's shutdown, the final copy, its integrity check, the fix-ups that
follow and the boot at the destination until SSH answers. Each part is measured where the
journal has measured it before (in this attempt or an earlier one, a rehearsal rolled back,
say) and otherwise assumed (the shutdown, the fix-ups) or configured (the boot,
``boot_time`` in the inventory). The final copy is projected as long as each filesystem's
last warm copy: both walk the same trees, and once the warm passes have converged the final
delta is no larger than the last warm one. Its integrity check, until one was measured, as
long as the first warm pass where it reads every file (``checksum``: the first pass read
them all), as the last warm pass where it compares only metadata (both walk the trees), and
so where it is ``staged`` (the metadata, and the content of the final delta only: the rest
was read before the downtime). Before any warm pass there is nothing to project from.
"""

from __future__ import annotations

from dataclasses import dataclass

from .journal import (
    ANSWERING,
    DOWNTIME_START,
    FINAL_COPY_DONE,
    ROLLED_BACK,
    Copy,
    is_copy,
    is_integrity,
    summarise,
)
from .units import human

ASSUMED_SHUTDOWN = 30.0  # seconds, until one is measured
ASSUMED_FIXUPS = 20.0  # seconds from the final copy's end to the disk let go


@dataclass(frozen=True)
class Part:
    name: str
    seconds: float
    source: str  # measured, assumed, configured, last warm pass (...)


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


INTEGRITY = ("checksum", "staged", "metadata", "skip")


def project(records: list[dict], boot_time: float, integrity: str = "staged") -> Projection | None:
    """The downtime a cutover would have now, from the guest's whole journal (every
    attempt); None before the first complete warm pass. ``integrity`` is how its final
    copy is checked (the inventory's ``integrity``; ``skip`` with ``skip_integrity``)."""
    if integrity not in INTEGRITY:
        raise ValueError(f"integrity must be one of {', '.join(INTEGRITY)}, not {integrity!r}")
    copies = _all_copies(records)
    first: dict[str, Copy] = {}  # each filesystem's first warm copy (it read every file)
    last: dict[str, Copy] = {}  # each filesystem's last warm copy
    for copy in copies:
        if is_copy(copy.step, "presync") and copy.rc == 0:
            first.setdefault(copy.step, copy)
            last[copy.step] = copy
    if not last:
        return None
    copy_seconds = sum(c.end - c.start for c in last.values())
    moved = sum(c.bytes or 0 for c in last.values())
    shutdown, checked, fixups, boot = _measured(records, copies)
    parts = [
        _part("shutdown", shutdown, ASSUMED_SHUTDOWN, "assumed"),
        Part("final copy", copy_seconds, f"as the last warm pass, {human(moved)}"),
    ]
    if integrity != "skip":
        like = first if integrity == "checksum" else last
        guess = sum(c.end - c.start for c in like.values())
        which = "first" if integrity == "checksum" else "last"
        parts.append(_part("integrity check", checked, guess, f"as the {which} warm pass"))
    parts += [
        _part("fix-ups", fixups, ASSUMED_FIXUPS, "assumed"),
        _part("boot", boot, float(boot_time), "configured"),
    ]
    return Projection(tuple(parts))


def _part(name: str, measured: float | None, otherwise: float, how: str) -> Part:
    if measured is not None:
        return Part(name, measured, "measured")
    return Part(name, otherwise, how)


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


def _measured(records: list[dict], copies: list[Copy]) -> tuple[float | None, ...]:
    """The last measured shutdown, integrity check, fix-ups and boot, from any attempt."""
    shutdown = checked = fixups = boot = None
    marks: dict[str, float] = {}
    for record in records:
        if record.get("event") != "mark":
            continue
        step, when = record.get("step"), float(record["time"])
        if step == DOWNTIME_START:
            marks = {DOWNTIME_START: when}
            later = [c for c in copies if c.start >= when and is_copy(c.step, "cutover")]
            if later:
                shutdown = later[0].start - when
        elif step == FINAL_COPY_DONE and DOWNTIME_START in marks:
            marks[FINAL_COPY_DONE] = when
            final = [
                c for c in copies
                if marks[DOWNTIME_START] <= c.end <= when
                and (is_copy(c.step, "cutover") or is_integrity(c.step))
            ]  # fmt: skip
            if final:
                fixups = when - max(c.end for c in final)
            checks = [c for c in final if is_integrity(c.step)]
            if checks:
                checked = sum(c.end - c.start for c in checks)
        elif step in ANSWERING and FINAL_COPY_DONE in marks:
            boot = when - marks[FINAL_COPY_DONE]
    return shutdown, checked, fixups, boot
