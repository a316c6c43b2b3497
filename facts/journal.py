"""
The migration journal xen2kvm keeps on each KVM host, one file per guest.
"""

from __future__ import annotations

import json

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override


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
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise FactProcessError(f"journal line {number} is not JSON: {exc}") from None
        return records


ROLLED_BACK = "rolled-back"


def current(records: list) -> list:
    """The records of the current attempt: a rollback starts the migration afresh."""
    last = max((i for i, r in enumerate(records) if r.get("step") == ROLLED_BACK), default=-1)
    return records[last + 1 :]


def done(records: list, step: str) -> bool:
    """Whether ``step`` finished in the current attempt (a mark, or a run ending with rc 0)."""
    return any(
        r.get("step") == step
        and (r.get("event") == "mark" or (r.get("event") == "end" and r.get("rc") == 0))
        for r in current(records)
    )


def mark_time(records: list, step: str) -> float | None:
    """When ``step`` was marked in the current attempt (the first time), if it was."""
    for record in current(records):
        if record.get("step") == step and record.get("event") == "mark":
            return float(record["time"])
    return None
