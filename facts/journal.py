"""
The migration journal xen2kvm keeps on each move's destination host, one file per guest,
and the lock that keeps a guest to one run at a time. What the records mean, and the
helpers that read them, are ``xen2kvm.journal``'s.
"""

from __future__ import annotations

import json

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override

from facts.sections import sections
from xen2kvm.journal import JournalError, check_step

JOURNAL_HEADER = "X2K-JOURNAL"  # a journal's lines are JSON objects: never this


def _nonblank(output: list[str]) -> list[str]:
    return [line.strip() for line in output if line.strip()]


class MigrationJournal(FactBase[list]):
    """
    The records of a guest's migration, oldest first (empty when it has none yet).

    .. code:: python

        [
            {"guest": "web1", "step": "presync:/", "event": "start", "time": 1764110000.1},
            {"guest": "web1", "step": "presync:/", "event": "end", "time": 1764110073.4,
             "rc": 0, "bytes": 851234567},
            {"guest": "web1", "step": "cutover-complete", "event": "mark", "time": ...},
        ]
    """

    default = list

    @override
    def command(self, state_dir: str, guest: str) -> StringCommand:
        path = QuoteString(f"{state_dir}/journal/{guest}.jsonl")
        return StringCommand("! test -e", path, "|| cat", path)

    @override
    def process(self, output: list[str]) -> list:
        records = []
        for number, line in enumerate(output, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FactProcessError(f"journal line {number} is not JSON: {exc}") from None
            try:
                if not isinstance(record, dict):
                    raise JournalError(f"not a record: {line[:80]!r}")
                check_step(record.get("step"))
            except JournalError as exc:
                raise FactProcessError(f"journal line {number}: {exc}") from None
            records.append(record)
        return records


class MigrationJournals(FactBase[dict]):
    """
    The journals of every guest moving to this host, by guest (empty when there are none):
    what the other guests' cutovers here measured, for a guest's projected downtime.

    .. code:: python

        {"web1": [{"guest": "web1", "step": "presync:/", ...}, ...], "legacy1": [...]}
    """

    default = dict

    @override
    def command(self, state_dir: str) -> StringCommand:
        return StringCommand(
            "if cd", QuoteString(f"{state_dir}/journal"), "2>/dev/null; then",
            "for f in *.jsonl; do [ -f \"$f\" ] || continue;",
            f"printf '{JOURNAL_HEADER} %s\\n' \"${{f%.jsonl}}\"; cat \"$f\"; echo;",
            "done; fi",
        )  # fmt: skip

    @override
    def process(self, output: list[str]) -> dict:
        texts = {
            name.strip(): text for name, text in sections(output, JOURNAL_HEADER, "journal").items()
        }
        journals = {}
        for guest, text in texts.items():
            try:
                journals[guest] = MigrationJournal().process(text)
            except FactProcessError as exc:
                raise FactProcessError(f"{guest}'s journal: {exc}") from None
        return journals


class MigrationLock(FactBase[dict | None]):
    """
    Who holds a guest's migration lock (``<state_dir>/locks/<guest>``) and since when
    (the lock's mtime); None when it is free. The owner is None while a run is between
    making the lock and writing its name in it.

    .. code:: python

        {"owner": "admin-laptop:41022:1873301", "since": 1795650051}
    """

    @override
    def command(self, state_dir: str, guest: str) -> StringCommand:
        path = f"{state_dir}/locks/{guest}"
        return StringCommand(
            "if test -d", QuoteString(path), "; then stat -c %Y", QuoteString(path),
            "&& { cat", QuoteString(f"{path}/owner"), "2>/dev/null || true; }; fi",
        )  # fmt: skip

    @override
    def process(self, output: list[str]) -> dict | None:
        lines = _nonblank(output)
        if not lines:
            return None
        if not lines[0].isdigit() or len(lines) > 2:
            raise FactProcessError(f"not a lock's mtime and owner: {output!r}")
        return {"owner": lines[1] if len(lines) > 1 else None, "since": int(lines[0])}


class MigrationCommand(FactBase[dict | None]):
    """
    The command ``x2k-journal`` runs (or last ran) for a guest, from its record
    ``<state_dir>/running/<guest>``: the pid of its process group, the step, and whether
    that process still runs. None when there is no record.

    A record whose process still runs while no run holds the guest's lock is a command
    left running by a run whose controller died: ``journal.lock`` stops it before taking
    the lock.

    .. code:: python

        {"pid": 4242, "step": "presync:/", "running": True}
    """

    @override
    def command(self, state_dir: str, guest: str) -> StringCommand:
        path = QuoteString(f"{state_dir}/running/{guest}")
        return StringCommand(
            "if test -f", path, "; then read -r pid start step <", path,
            "&& now=$(sed 's/^.*) //' /proc/$pid/stat 2>/dev/null | cut -d ' ' -f 20)",
            '&& echo "$pid ${start:--} ${now:--} $step"; fi',
        )  # fmt: skip

    @override
    def process(self, output: list[str]) -> dict | None:
        lines = _nonblank(output)
        if not lines:
            return None
        fields = lines[0].split(" ", 3)
        if len(lines) > 1 or len(fields) != 4 or not fields[0].isdigit():
            raise FactProcessError(f"not a running command's record: {output!r}")
        pid, start, now, step = fields
        return {"pid": int(pid), "step": step, "running": start != "-" and start == now}


# The awk that reads a guest's recorded changes ("STEP ITEMIZE NAME" lines, see
# x2k-journal) and prints each watched path they touched: the path itself or anything
# below it, or a directory on its way, made, replaced, removed or written. A change of
# attributes only (an ITEMIZE starting with "."; a directory's time, say, which each copy
# sets back after the fix-ups added a file to it) touches nothing a fix-up reads.
_TOUCHED = r"""
BEGIN { n = split(watched, w, " ") }
{
    step = $1; code = $2
    if (substr(code, 1, 1) == ".") next
    name = substr($0, length(step) + length(code) + 3)
    mountpoint = substr(step, index(step, ":") + 1)
    if (name == "./") name = ""
    path = (mountpoint == "/" ? "" : mountpoint) "/" name
    sub(/\/+$/, "", path)
    if (path == "") path = "/"
    for (i = 1; i <= n; i++) {
        p = w[i]
        if (path == p || index(path, p "/") == 1 || path == "/" || index(p, path "/") == 1)
            hit[p] = 1
    }
}
END { for (p in hit) print p }
"""


class MigrationChanges(FactBase[list]):
    """
    Which of ``paths`` (in the guest's tree, as the guest sees them) the copies recorded
    since the guest's last ``fixups-done`` changed: the path, anything below it, or a
    directory on its way made, replaced or removed. ``["*"]`` when a copy's changes are
    unknown (its ``x2k-journal`` was killed before it wrote them): anything may have
    changed. Empty when nothing was recorded.

    .. code:: python

        ["/boot", "/root/.ssh/authorized_keys"]
    """

    default = list

    @override
    def command(self, state_dir: str, guest: str, paths: tuple[str, ...]) -> StringCommand:
        for path in paths:
            if (
                path in ("", "/")
                or not path.startswith("/")
                or path.endswith("/")
                or any(char.isspace() for char in path)
            ):
                raise ValueError(f"not a watched path: {path!r}")
        return StringCommand(
            "if cd", QuoteString(f"{state_dir}/changed/{guest}"), "2>/dev/null; then",
            "if ls | grep -q '[.]open$'; then echo '*';",
            "elif ls | grep -q '[.]list$'; then cat ./*.list | awk -v",
            QuoteString(f"watched={' '.join(paths)}"), QuoteString(_TOUCHED), "; fi; fi",
        )  # fmt: skip

    @override
    def process(self, output: list[str]) -> list:
        return sorted(_nonblank(output))
