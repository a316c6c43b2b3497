"""xen2kvm.downtime: the downtime a cutover would have, projected from the journal."""

from __future__ import annotations

from xen2kvm.downtime import ASSUMED_FIXUPS, ASSUMED_SHUTDOWN, Peers, at_gate, project


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


def test_a_catch_up_is_the_last_warm_pass_of_its_filesystem():
    records = [
        *copy("presync:/", 0, 60, 800_000_000),
        *copy("presync:/var", 60, 70, 20_000_000),
        *copy("catchup:/", 100, 105, 3_000_000),  # a cutover's, rolled back or going on
    ]
    found = project(records, 90, "checksum")
    assert found is not None
    parts = {p.name: p for p in found.parts}
    assert parts["final copy"].seconds == 5 + 10
    assert parts["integrity check"].seconds == 60 + 10  # the first passes read every file


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


def cutover(guest: str, at: float, shutdown: float, fixups: float, boot: float) -> list[dict]:
    """A complete cutover of another guest: its shutdown, a 6 s final copy, its fix-ups
    and its boot, from ``at``."""
    copied = at + shutdown
    done_at = copied + 6 + fixups
    return [
        {**r, "guest": guest}
        for r in [
            rec("downtime-start", "mark", at),
            *copy("cutover:/", copied, copied + 6, 4000),
            rec("final-copy-done", "mark", done_at),
            rec("kvm-answering", "mark", done_at + boot),
        ]
    ]


def test_the_other_guests_measured_parts_stand_in_for_assumptions():
    journals = {
        "legacy1": cutover("legacy1", 10, shutdown=4, fixups=6, boot=50),
        "mail1": cutover("mail1", 200, shutdown=2, fixups=10, boot=40),
        "db1": cutover("db1", 400, shutdown=9, fixups=9, boot=70),
    }
    own = copy("presync:/", 100, 110, 300_000)
    found = project(own, 90, "metadata", Peers.of({**journals, "web1": own}, besides="web1"))
    assert found is not None
    assert {p.name: (p.seconds, p.source, p.measured) for p in found.parts} == {
        "shutdown": (4, "the median of 3 guests measured here", True),
        "final copy": (10, "as the last warm pass, 293.0K", False),
        "integrity check": (10, "as the last warm pass", False),  # its own files, not theirs
        "fix-ups": (9, "the median of 3 guests measured here", True),
        "boot": (50, "the median of 3 guests measured here", True),
    }


def test_only_what_was_measured_before_a_time_and_its_own_measurements_first():
    journals = {
        "legacy1": cutover("legacy1", 10, shutdown=4, fixups=6, boot=50),
        "mail1": cutover("mail1", 500, shutdown=2, fixups=10, boot=40),  # after: not known
    }
    peers = Peers.of(journals, besides="web1", before=300)
    own = copy("presync:/", 100, 110, 300_000)
    found = project(own, 90, "skip", peers)
    assert found is not None
    assert [(p.name, p.seconds, p.source) for p in found.parts if p.name != "final copy"] == [
        ("shutdown", 4, "as measured for legacy1 here"),
        ("fix-ups", 6, "as measured for legacy1 here"),
        ("boot", 50, "as measured for legacy1 here"),
    ]
    rehearsed = [*cutover("web1", 120, shutdown=1, fixups=3, boot=30), *own]
    mine = project(rehearsed, 90, "skip", peers)
    assert mine is not None
    assert {p.name: (p.seconds, p.source) for p in mine.parts if p.name != "final copy"} == {
        "shutdown": (1, "measured"),
        "fix-ups": (3, "measured"),
        "boot": (30, "measured"),
    }


def test_no_peers_before_any_other_cutover():
    journals = {"web1": copy("presync:/", 0, 60, 1000), "legacy1": copy("presync:/", 0, 9, 1)}
    assert Peers.of(journals, besides="web1").seen == {
        "shutdown": (),
        "fix-ups": (),
        "boot": (),
    }


def staged_warm(guest: str, size: int, copied: float, checked: float) -> list[dict]:
    """A guest's first warm copy of / (``size`` bytes in ``copied`` s), then the first
    half of its staged check, reading every file's content in ``checked`` s."""
    return [
        {**r, "guest": guest}
        for r in [
            *copy("presync:/", 0, copied, size),
            rec("integrity-before:/", "start", 500),
            rec("integrity-before:/", "end", 500 + checked, rc=0, differences=0),
        ]
    ]


def test_a_checksum_check_at_the_content_rate_measured_here():
    """Read in full, a check takes the time a content check took per byte here, times its
    own first-pass bytes: not as long as its first warm copy."""
    journals = {
        "web1": staged_warm("web1", 800_000_000, 100, checked=20),
        "mail1": staged_warm("mail1", 400_000_000, 50, checked=12),
    }
    own = copy("presync:/", 0, 80, 400_000_000)
    peers = Peers.of({**journals, "legacy1": own}, besides="legacy1")
    found = project(own, 90, "checksum", peers)
    assert found is not None
    check = {p.name: p for p in found.parts}["integrity check"]
    # the median of 20/800M and 12/400M s per byte, times 400M
    assert check.seconds == (20 / 800_000_000 + 12 / 400_000_000) / 2 * 400_000_000
    assert check.source == "381.5M as the median content check of 2 guests here"
    alone = project(own, 90, "checksum", Peers.of({"web1": journals["web1"]}))
    assert alone is not None
    check = {p.name: p for p in alone.parts}["integrity check"]
    assert (check.seconds, check.source) == (10, "381.5M as a content check measured for web1 here")
    # the other kinds do not read every file: as before
    staged = project(own, 90, "staged", peers)
    assert staged is not None and {p.name: p.seconds for p in staged.parts}["integrity check"] == 80


def test_its_own_content_check_first_and_too_small_a_check_is_no_rate():
    own = staged_warm("legacy1", 400_000_000, 80, checked=8)  # an earlier staged attempt
    peers = Peers.of({"web1": staged_warm("web1", 800_000_000, 100, checked=20)})
    found = project(own, 90, "checksum", peers)
    assert found is not None
    check = {p.name: p for p in found.parts}["integrity check"]
    assert (check.seconds, check.source) == (8, "381.5M as its own content check")
    tiny = {"web1": staged_warm("web1", 1_000_000, 1, checked=5)}  # under 16 MiB: no rate
    assert Peers.of(tiny).rates == ()
    failed = staged_warm("web1", 800_000_000, 100, checked=20)
    failed[-1] = {**failed[-1], "rc": 1}
    assert Peers.of({"web1": failed}).rates == ()
    fallback = project(copy("presync:/", 0, 80, 400_000_000), 90, "checksum", Peers.of(tiny))
    assert fallback is not None
    check = {p.name: p for p in fallback.parts}["integrity check"]
    assert (check.seconds, check.source) == (80, "as the first warm pass")


def test_the_gate_projected_before_the_window_s_own_steps_before_the_stop():
    records = [
        *copy("presync:/", 0, 60, 800_000_000),
        *copy("presync:/", 70, 74, 1_000_000),
        *copy("integrity-before:/", 100, 120, 0),  # the staged check's first half
        *copy("catchup:/", 121, 133, 50_000_000),
        *copy("integrity-catchup:/", 133, 134, 0),  # and what the catch-up brought
        rec("downtime-start", "mark", 134),
    ]
    start = len(records) - 1
    assert at_gate(records, start) == 4, "what the gate saw: the two warm passes"
    found = project(records[: at_gate(records, start)], 90)
    assert found is not None and found.parts[1].seconds == 4
    assert at_gate(records, 2) == 2, "nothing of a window before it"
