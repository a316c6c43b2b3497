"""bench/downtime.py's pure part: a cutover's journal read into its downtime by step, the
tool's share, and the set-up time read from the run's output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from bench import downtime
from bench.downtime import NoCutover, breakdown, projected_line, setup_seconds, start_seconds


def rec(step: str, event: str, time: float, extra: str = "") -> dict:
    """A record as x2k-journal writes it (files/x2k-journal.sh ``record``): its printf,
    the time as ``date +%s.%N | cut -c1-14`` gives it, and ``extra`` as its callers do."""
    stamp = f"{time:.3f}"[:14]
    line = '{"guest":"%s","step":"%s","event":"%s","time":%s%s}' % (  # noqa: UP031
        "web1",
        step,
        event,
        stamp,
        extra,
    )
    return json.loads(line)


def copy(step: str, start: float, end: float, size: int, rc: int = 0) -> list[dict]:
    """A copy step (``x2k-journal ... run rsync --stats``): its end has rc and bytes."""
    return [rec(step, "start", start), rec(step, "end", end, f',"rc":{rc},"bytes":{size}')]


def check(step: str, start: float, end: float, differences: int = 0) -> list[dict]:
    """An integrity step (``x2k-journal ... check``): rc and differences, no bytes."""
    return [
        rec(step, "start", start),
        rec(step, "end", end, f',"rc":0,"differences":{differences}'),
    ]


T = 1_733_000_000.0  # a time as the KVM host's clock gives it

WARM = [
    *copy("presync:/", T, T + 60, 900_000_000),
    *copy("presync:/var", T + 61, T + 70, 80_000_000),
    *copy("presync:/", T + 71, T + 80, 2_000_000),
]
CUTOVER = [
    rec("downtime-start", "mark", T + 100),
    *copy("cutover:/", T + 112, T + 122.5, 52_000_000),
    *copy("cutover:/var", T + 123, T + 127, 1_000_000),
    *check("integrity:/", T + 127.5, T + 140),
    *check("integrity:/var", T + 140.2, T + 143),
    rec("final-copy-done", "mark", T + 160),
    rec("kvm-answering", "mark", T + 230),
    rec("cutover-complete", "mark", T + 235),
]


def test_records_are_shaped_as_the_journal_tool_writes_them():
    assert CUTOVER[1] == {"guest": "web1", "step": "cutover:/", "event": "start", "time": T + 112}
    assert CUTOVER[2]["rc"] == 0 and CUTOVER[2]["bytes"] == 52_000_000
    assert set(CUTOVER[6]) == {"guest", "step", "event", "time", "rc", "differences"}


def test_the_downtime_by_step():
    found = breakdown(WARM + CUTOVER)
    assert found.downtime == pytest.approx(130)
    assert found.shutdown == pytest.approx(12)  # nothing attributed to the set-up
    assert [(s.name, round(s.seconds, 1)) for s in found.copies] == [
        ("cutover:/", 10.5),
        ("cutover:/var", 4.0),
    ]
    assert [(s.name, round(s.seconds, 1)) for s in found.checks] == [
        ("integrity:/", 12.5),
        ("integrity:/var", 2.8),
    ]
    assert found.between == pytest.approx(0.5 + 0.5 + 0.2)
    assert found.fixups == pytest.approx(17)
    assert found.boot == pytest.approx(70)
    assert found.final_rsync == pytest.approx(14.5)
    assert "49.6 MiB moved" in found.copies[0].note
    assert found.checks[0].note == "0 differences"


def test_the_rows_add_up_to_the_downtime():
    found = breakdown(WARM + CUTOVER, setup=5)
    assert sum(row.seconds for row in found.rows()) == pytest.approx(found.downtime)


def test_the_set_up_is_taken_off_the_shutdown():
    found = breakdown(WARM + CUTOVER, setup=5)
    assert (found.shutdown, found.setup) == (pytest.approx(7), 5)
    # never more than the whole gap from downtime-start to the first copy
    assert breakdown(WARM + CUTOVER, setup=50).setup == pytest.approx(12)
    assert breakdown(WARM + CUTOVER, setup=50).shutdown == 0


def test_the_tool_share_with_the_boot_measured_by_hand():
    found = breakdown(WARM + CUTOVER, setup=5)
    # (130 - 7 shutdown - 14.5 final rsync - 60 hand boot) / 130
    assert found.tool_share(boot=60) == pytest.approx((130 - 7 - 14.5 - 60) / 130)
    # without one, this run's start and boot (70 s)
    assert found.tool_share() == pytest.approx((130 - 7 - 14.5 - 70) / 130)


def test_the_start_is_taken_off_the_boot_and_counts_as_the_tool_s():
    found = breakdown(WARM + CUTOVER, setup=5, start=9)
    assert (found.start, found.boot) == (9, pytest.approx(61))
    assert sum(row.seconds for row in found.rows()) == pytest.approx(found.downtime)
    # the journal's boot without the start: (130 - 7 - 14.5 - 61) / 130
    assert found.tool_share() == pytest.approx((130 - 7 - 14.5 - 61) / 130)
    assert found.tool_share(boot=60) == pytest.approx((130 - 7 - 14.5 - 60) / 130)
    # never more than final-copy-done to the answer
    assert breakdown(WARM + CUTOVER, start=500).start == pytest.approx(70)


def test_the_last_cutover_of_the_current_attempt():
    rehearsal = [
        rec("downtime-start", "mark", T - 1000),
        *copy("cutover:/", T - 990, T - 900, 5),
        rec("final-copy-done", "mark", T - 890),
        rec("kvm-answering", "mark", T - 800),
        rec("rolled-back", "mark", T - 700),
    ]
    assert breakdown(rehearsal + WARM + CUTOVER).downtime == pytest.approx(130)


def test_an_interrupted_cutover_finished_by_the_next_run_counts_from_its_start():
    # a second run found final-copy-done missing and redid the copies: one window
    redone = [
        rec("downtime-start", "mark", T + 100),
        *copy("cutover:/", T + 110, T + 115, 1_000),
        *copy("cutover:/", T + 200, T + 202, 10),
        rec("final-copy-done", "mark", T + 210),
        rec("kvm-answering", "mark", T + 260),
    ]
    found = breakdown(WARM + redone)
    assert found.downtime == pytest.approx(160)
    assert [s.name for s in found.copies] == ["cutover:/", "cutover:/"]


@pytest.mark.parametrize(
    "records",
    [
        WARM,  # no cutover yet
        WARM + CUTOVER[:5],  # stopped before final-copy-done
        [*WARM, *CUTOVER, rec("rolled-back", "mark", T + 300)],  # rolled back since
        [*WARM, CUTOVER[0], CUTOVER[-3], CUTOVER[-2]],  # no final copy
    ],
    ids=["no-cutover", "unfinished", "rolled-back", "no-copy"],
)
def test_no_complete_cutover_is_refused(records):
    with pytest.raises(NoCutover):
        breakdown(records)


def output(*lines: tuple[float, str]) -> list[tuple[float, str]]:
    return list(lines)


RUN = output(
    (10.0, "--> Starting operation: web1: downtime starts (shutdown on xen1) "),
    (10.4, "    [kvm1] Success"),
    (10.5, "--> Starting operation: cutover of web1: downtime starts "),
    (11.0, "--> Starting operation: \x1b[1mweb1: stopped on xen1\x1b[0m "),
    (19.0, "    [xen1] Success"),
    (19.1, "--> Starting operation: web1: no autostart on xen1 "),
    (19.6, "--> Starting operation: web1: / read-only on xen1 "),
    (23.6, "--> Starting operation: web1: cutover copy of / to kvm1 "),
    (33.0, "--> Starting operation: web1: cutover copy of /var to kvm1 "),
)


def test_the_set_up_from_the_run_output():
    # from the operation after the stop to the first final copy
    assert setup_seconds(RUN, "web1", "xen1") == pytest.approx(23.6 - 19.1)


def test_the_set_up_from_operations_named_with_their_file():
    # as pyinfra 3 prints the operations of a file the deploy includes
    run = [
        (when, line.replace("operation: ", "operation: tasks/cutover.py | ")) for when, line in RUN
    ]
    assert setup_seconds(run, "web1", "xen1") == pytest.approx(23.6 - 19.1)


def test_no_set_up_when_the_output_does_not_show_it():
    assert setup_seconds(RUN, "mail1", "xen1") is None
    assert setup_seconds(RUN[:7], "web1", "xen1") is None  # no copy started


END = output(
    (40.0, "--> Starting operation: web1: the new volumes are complete and let go "),
    (40.3, "--> Starting operation: cutover of web1: the final copies are done "),
    (41.0, "--> Starting operation: web1: not running on xen1 (split-brain guard) "),
    (42.5, "--> Starting operation: web1: KVM domain started "),
    (49.8, "--> Starting operation: web1: started; its answer watched for under KVM on kvm1 "),
)


def test_the_start_from_the_run_output():
    # quiet: from the operation after the mark to the watch, the operation after the start
    assert start_seconds(END, "web1") == pytest.approx(49.8 - 40.3)
    assert start_seconds(END[:4], "web1") is None  # not started yet
    assert start_seconds(END, "mail1") is None


VERBOSE_END = output(
    *END[:3],
    (41.2, "[xen1]                >>> sh -c 'virsh start --domain not-this-one'"),
    END[3],
    (42.6, "[kvm1]                >>> sh -c 'LC_ALL=C virsh '\"'\"'dominfo --domain web1; ...'"),
    (44.6, "[kvm1]   >>> sh -c 'virsh -c qemu+tcp://198.51.100.1/system start --domain web1'"),
    (48.9, "[kvm1]                Domain 'web1' started"),
    END[4],
)


def test_the_start_ends_at_its_command_in_a_verbose_output():
    # the guard and the start's reading count as the tool's; the command, as the boot by
    # hand, with the boot (a start command outside the KVM start does not count)
    assert start_seconds(VERBOSE_END, "web1") == pytest.approx(44.6 - 40.3)


def test_the_projection_the_gate_printed():
    run = [
        *RUN[:2],
        (10.2, "--> Starting operation: web1: projected downtime 127 s: shutdown 8 s "
               "(measured), final copy 15 s (as the last warm pass, 412.0K), boot 90 s "
               "(configured) "),
    ]  # fmt: skip
    assert projected_line(run, "web1").startswith("web1: projected downtime 127 s:")
    assert projected_line(RUN, "web1") is None


def test_the_writer_goes_on_writing_after_its_command_returned(tmp_path):
    """WRITER, run here as in the guest: it returns at once and leaves a writer behind
    that adds a file a second (of the KiB asked) and a line to its log."""
    live = tmp_path / "live"
    ran = subprocess.run(
        ["sh", "-s", "--", "4", str(live)],
        input=downtime.WRITER,
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    pid = int(downtime.fields(ran.stdout, "x2k-writer")["pid"])
    try:
        deadline = time.monotonic() + 10
        while len(list(live.glob("w-*.bin"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        written = sorted(live.glob("w-*.bin"))
        assert len(written) >= 2, written
        assert {path.stat().st_size for path in written[:2]} == {4 * 1024}
        assert len((live / "log").read_text().splitlines()) >= 2
    finally:
        os.killpg(pid, signal.SIGTERM)


def test_the_window_operations_from_the_run_output():
    # each operation from the downtime mark to the watch, timed to the next one's start
    run = [*RUN, *END]
    profile = downtime.window_operations(run, "web1")
    assert profile[0] == ("web1: downtime starts (shutdown on xen1)", pytest.approx(0.5))
    assert profile[-1] == ("web1: KVM domain started", pytest.approx(7.3))
    assert sum(seconds for _, seconds in profile) == pytest.approx(49.8 - 10.0)
    assert downtime.window_operations(RUN, "web1") == []  # not started yet
    assert downtime.window_operations(run, "mail1") == []
