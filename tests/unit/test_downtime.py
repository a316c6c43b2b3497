"""xen2kvm.downtime: the downtime a cutover would have, projected from the journal."""

from __future__ import annotations

from xen2kvm.downtime import ASSUMED_FIXUPS, ASSUMED_SHUTDOWN, project


def rec(step: str, event: str, time: float, **extra) -> dict:
    return {"guest": "web1", "step": step, "event": event, "time": time, **extra}


def copy(step: str, start: float, end: float, size: int, rc: int = 0) -> list[dict]:
    return [rec(step, "start", start), rec(step, "end", end, rc=rc, bytes=size)]


def test_nothing_to_project_before_a_complete_warm_copy():
    assert project([], 90) is None
    assert project(copy("presync:/", 1, 5, 10, rc=23), 90) is None


def test_first_warm_pass_with_assumed_and_configured_parts():
    found = project(copy("presync:/", 0, 60, 800_000_000), 75, "checksum")
    assert found is not None
    assert [(p.name, p.seconds, p.source.split(",")[0]) for p in found.parts] == [
        ("shutdown", ASSUMED_SHUTDOWN, "assumed"),
        ("final copy", 60, "as the last warm pass"),
        ("integrity check", 60, "as the first warm pass"),  # reads all, as the first did
        ("fix-ups", ASSUMED_FIXUPS, "assumed"),
        ("boot", 75, "configured"),
    ]
    assert found.total == ASSUMED_SHUTDOWN + 60 + 60 + ASSUMED_FIXUPS + 75


def test_the_integrity_check_as_the_inventory_sets_it():
    records = [*copy("presync:/", 0, 60, 800_000_000), *copy("presync:/", 70, 78, 1_000_000)]
    by_kind = {
        kind: {p.name: p.seconds for p in project(records, 90, kind).parts}  # type: ignore[union-attr]
        for kind in ("checksum", "staged", "metadata", "skip")
    }
    assert by_kind["checksum"]["integrity check"] == 60  # reads every file: the first pass
    assert by_kind["metadata"]["integrity check"] == 8  # walks the trees: the last pass
    assert by_kind["staged"]["integrity check"] == 8  # and reads the final delta only
    assert "integrity check" not in by_kind["skip"]


def test_each_filesystem_counts_its_last_warm_copy():
    records = [
        *copy("presync:/", 0, 60, 800_000_000),
        *copy("presync:/var", 60, 70, 20_000_000),  # under the threshold: copied once
        *copy("presync:/", 70, 78, 1_000_000),  # the second pass of / only
    ]
    found = project(records, 90)
    assert found is not None
    assert found.parts[1].seconds == 8 + 10


def test_measured_parts_from_an_earlier_attempt_win():
    rehearsal = [
        *copy("presync:/", 0, 60, 800_000_000),
        rec("downtime-start", "mark", 100),
        *copy("cutover:/", 107, 119, 400_000),
        rec("integrity:/", "start", 119),
        rec("integrity:/", "end", 124, rc=0, differences=0),
        rec("final-copy-done", "mark", 132),
        rec("kvm-answering", "mark", 208),
        rec("cutover-complete", "mark", 210),
        rec("rolled-back", "mark", 300),
    ]
    found = project([*rehearsal, *copy("presync:/", 400, 409, 300_000)], 90)
    assert found is not None
    assert {p.name: (p.seconds, p.source) for p in found.parts if p.name != "final copy"} == {
        "shutdown": (7, "measured"),
        "integrity check": (5, "measured"),
        "fix-ups": (8, "measured"),
        "boot": (76, "measured"),
    }
    assert found.parts[1].seconds == 9  # the new attempt's warm pass
    assert found.describe().startswith("projected downtime 105 s: shutdown 7 s (measured)")


def test_a_rehomed_guest_is_projected_the_same_way():
    records = [
        *copy("rehome-presync:/", 0, 30, 500_000_000),
        rec("downtime-start", "mark", 50),
        *copy("rehome-cutover:/", 55, 60, 1000),
        rec("final-copy-done", "mark", 61),
        rec("guest-answering", "mark", 101),
    ]
    found = project(records, 90, "skip")
    assert found is not None
    assert [p.seconds for p in found.parts] == [5, 30, 1, 40]
