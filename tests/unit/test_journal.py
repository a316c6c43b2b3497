"""xen2kvm.journal: the closed vocabulary of step names, and reading a journal."""

from __future__ import annotations

import pytest

from xen2kvm import journal
from xen2kvm.journal import JournalError, check_step, copy_step, summarise


@pytest.mark.parametrize("step", journal.MILESTONES)
def test_every_milestone_is_a_step(step):
    assert check_step(step) == step


@pytest.mark.parametrize(
    ("phase", "mountpoint"),
    [
        ("presync", "/"),
        ("catchup", "/var"),
        ("cutover", "/var/lib/mysql"),
        ("rehome-presync", "/srv/a_b.c+d@e-f"),
        ("rehome-catchup", "/"),
    ],
)
def test_copy_steps(phase, mountpoint):
    assert copy_step(phase, mountpoint) == f"{phase}:{mountpoint}"


@pytest.mark.parametrize(
    "step",
    [
        'presync:/srv","step":"cutover-complete',  # a forged record through a mountpoint
        "presync:/srv x",  # a space
        "presync:/srv\n",  # a newline
        "presync:/../etc",  # out of the tree
        "presync://etc",
        "presync:srv",  # not absolute
        "warmup:/",  # not a copy phase
        "xen-stopped",  # not a milestone
        "",
        None,
        3,
    ],
)
def test_anything_else_is_refused(step):
    with pytest.raises(JournalError, match="not a journal step name"):
        check_step(step)


@pytest.mark.parametrize(("prefix", "mountpoint"), [("", "/"), ("rehome-", "/var")])
def test_the_check_before_the_downtime_is_no_integrity_check_in_it(prefix, mountpoint):
    step = journal.precheck_step(prefix, mountpoint)
    assert step == f"{prefix}integrity-before:{mountpoint}"
    assert check_step(step) == step
    assert not journal.is_integrity(step) and not journal.is_copy(step)
    assert journal.is_integrity(journal.integrity_step(prefix, mountpoint))
    caught_up = journal.recheck_step(prefix, mountpoint)
    assert caught_up == f"{prefix}integrity-catchup:{mountpoint}"
    assert check_step(caught_up) == caught_up
    assert not journal.is_integrity(caught_up) and not journal.is_copy(caught_up)


def test_is_copy_by_phase_including_a_rehome():
    assert journal.is_copy("presync:/var", "presync")
    assert journal.is_copy("rehome-cutover:/", "cutover")
    assert not journal.is_copy("cutover:/", "presync")
    assert not journal.is_copy(journal.CUTOVER_COMPLETE)


def test_warm_copies_and_those_that_keep_their_changes():
    assert journal.is_warm("presync:/") and journal.is_warm("rehome-catchup:/var")
    assert not journal.is_warm("cutover:/") and not journal.is_warm("integrity-before:/")
    assert journal.lists_changes("catchup:/") and journal.lists_changes("rehome-cutover:/")
    assert not journal.lists_changes("presync:/")
    assert journal.filesystem_of("catchup:/var") == "presync:/var"
    assert journal.filesystem_of("rehome-catchup:/") == "rehome-presync:/"


def test_warm_passes_a_filesystem_again_or_a_catch_up_starts_the_next():
    steps = ["presync:/", "presync:/var", "presync:/", "catchup:/", "catchup:/var",
             "cutover:/", "presync:/"]  # fmt: skip
    found = [[step for step in group] for group in journal.warm_passes(steps, step=str)]
    assert found == [
        ["presync:/", "presync:/var"],
        ["presync:/"],
        ["catchup:/", "catchup:/var"],  # its own pass, though / alone came before
        ["presync:/"],  # a rerun of presync after it
    ]


def record(step: str, event: str, time: float, **extra) -> dict:
    return {"guest": "web1", "step": step, "event": event, "time": time, **extra}


ATTEMPT = [
    record("presync:/", "start", 10.0),
    record("presync:/", "end", 70.0, rc=0, bytes=800),
    record("downtime-start", "mark", 100.0),
    record("cutover:/", "start", 105.0),
    record("cutover:/", "end", 112.0, rc=0, bytes=40),
    record("final-copy-done", "mark", 120.0),
    record("kvm-answering", "mark", 190.0),
    record("cutover-complete", "mark", 195.0),
]


def test_summary_of_an_attempt():
    summary = summarise(ATTEMPT)
    assert summary.downtime == 90.0
    assert summary.copied("presync") == 800
    assert summary.copied("cutover") == 40
    assert [(c.step, c.end - c.start) for c in summary.copies] == [
        ("presync:/", 60.0),
        ("cutover:/", 7.0),
    ]
    assert journal.done(ATTEMPT, journal.CUTOVER_COMPLETE)


def test_a_rollback_starts_a_new_attempt():
    records = [*ATTEMPT, record("rolled-back", "mark", 300.0), record("presync:/", "start", 400)]
    assert not journal.done(records, journal.CUTOVER_COMPLETE)
    summary = summarise(records)
    assert summary.downtime is None
    assert summary.copies == ()  # the copy that started is not finished


def test_a_failed_copy_moves_no_bytes_and_is_not_done():
    records = [record("presync:/", "start", 1.0), record("presync:/", "end", 2.0, rc=23, bytes=5)]
    assert summarise(records).copied("presync") == 0
    assert not journal.done(records, "presync:/")


def test_a_rehomed_guest_downtime_ends_when_it_answers_on_its_new_dom0():
    records = [record("downtime-start", "mark", 5.0), record("guest-answering", "mark", 47.5)]
    assert summarise(records).downtime == 42.5


def _end(step: str, time: float) -> dict:
    return {"guest": "web1", "step": step, "event": "end", "time": time, "rc": 0, "bytes": 1}


def _mark(step: str, time: float, **extra) -> dict:
    return {"guest": "web1", "step": step, "event": "mark", "time": time, **extra}


FIXUPS = {"fstab": ("/etc/fstab",), "migration-key": ("/root/.ssh/authorized_keys",),
          "bootloader": ("/boot",)}  # fmt: skip


def test_the_first_fix_ups_of_an_attempt_are_all_redone():
    records = [_end("presync:/", 1)]
    assert journal.redone(records, [], FIXUPS) == list(FIXUPS)
    rolled = [_end("presync:/", 1), _mark("fixups-done", 2), _mark("rolled-back", 3)]
    assert not journal.done(rolled, journal.FIXUPS_DONE), "a rollback starts afresh"
    assert journal.redone(rolled, [], FIXUPS) == list(FIXUPS)


def test_after_fix_ups_only_what_a_copy_touched_is_redone():
    records = [_end("presync:/", 1), _mark("fixups-done", 2), _end("cutover:/", 3)]
    assert journal.redone(records, [], FIXUPS) == []
    touched = ["/root/.ssh/authorized_keys"]
    assert journal.redone(records, touched, FIXUPS) == ["migration-key"]
    assert journal.redone(records, ["*"], FIXUPS) == list(FIXUPS), "unknown: all"


def test_fixups_current_until_the_next_copy():
    done = [_end("presync:/", 1), _mark("fixups-done", 2)]
    assert journal.fixups_current(done)
    assert journal.fixups_current([*done, _end("integrity:/", 3)]), "a check copies nothing"
    assert not journal.fixups_current([*done, _end("cutover:/var", 3)])
    assert not journal.fixups_current([_end("presync:/", 1)])
    assert not journal.fixups_current([*done, _mark("rolled-back", 3)])
