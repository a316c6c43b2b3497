"""bench/wave.py's pure part: each guest's journal (migrated alone, rolled back, migrated
again in the wave) read into its two downtimes, the wall-time and downtime ratios, the
table and the summary line."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from bench.downtime import NoCutover
from bench.wave import (
    Projected,
    Result,
    attempts,
    result,
    rolled_back,
    summary_line,
    table,
    wave_ratio,
    worst,
)
from tests.unit.journal_records import T, mark, move
from xen2kvm.journal import DOWNTIME_START, ROLLED_BACK

# Each guest: its cutover alone, its rollback, then its window in the wave (the wave's
# rounds take them one after the other: they share xen1 and kvm1).
WEB1_ALONE = move(
    "web1", T, 10, {"/": (5, 1_000_000), "/var": (2, 100_000)}, {"/": 12, "/var": 3}, 15, 80
)  # 127 s
WEB1_WAVE = move(
    "web1", T + 2000, 11, {"/": (6, 1_200_000), "/var": (2, 90_000)}, {"/": 12, "/var": 3}, 15, 83
)  # 132 s
LEGACY1_ALONE = move(
    "legacy1", T + 300, 20, {"/": (4, 800_000), "/var": (1, 50_000)}, {"/": 10, "/var": 2}, 14, 95
)  # 146 s
LEGACY1_WAVE = move(
    "legacy1", T + 2140, 21, {"/": (4, 900_000), "/var": (1, 60_000)}, {"/": 10, "/var": 2}, 14, 110
)  # 162 s
MAIL1_COPIES = {"/": (6, 2_000_000), "/srv": (1, 10_000), "/var": (2, 300_000)}
MAIL1_CHECKS = {"/": 13, "/srv": 1, "/var": 3}
MAIL1_ALONE = move("mail1", T + 600, 9, MAIL1_COPIES, MAIL1_CHECKS, 16, 85)  # 136 s
MAIL1_WAVE = move("mail1", T + 2310, 9, MAIL1_COPIES, MAIL1_CHECKS, 16, 90)  # 141 s


def journal(name: str, alone: list[dict], wave: list[dict], rollbacks: int = 1) -> list[dict]:
    """Its journal on kvm1: alone, rolled back (``rollbacks`` runs marked it), the wave."""
    back = [mark(name, ROLLED_BACK, T + 1000 + n) for n in range(rollbacks)]
    return alone + back + wave


JOURNALS = {
    "web1": journal("web1", WEB1_ALONE, WEB1_WAVE),
    "legacy1": journal("legacy1", LEGACY1_ALONE, LEGACY1_WAVE),
    "mail1": journal("mail1", MAIL1_ALONE, MAIL1_WAVE),
}
ALONE_RUNS = {"web1": 400.0, "legacy1": 380.5, "mail1": 470.0}  # each cutover run alone, s
WAVE_RUN = 1250.0  # the three in one cutover run, s


def results() -> list[Result]:
    return [result(name, records, ALONE_RUNS[name]) for name, records in JOURNALS.items()]


def test_the_attempts_of_a_journal_split_at_each_rollback():
    found = attempts(JOURNALS["web1"])
    assert [len(a) for a in found] == [len(WEB1_ALONE), len(WEB1_WAVE)]
    assert found[-1] == WEB1_WAVE  # the current attempt, as xen2kvm.journal.current reads it
    assert attempts(WEB1_ALONE) == [WEB1_ALONE]


def test_each_guests_downtime_alone_and_in_the_wave():
    found = {r.guest: (r.alone, r.wave) for r in results()}
    assert found == {
        "web1": (pytest.approx(127), pytest.approx(132)),
        "legacy1": (pytest.approx(146), pytest.approx(162)),
        "mail1": (pytest.approx(136), pytest.approx(141)),
    }


def test_a_second_rollback_run_does_not_hide_the_cutover_alone():
    # the first rollback run failed for a host it could not reach, the second marked it
    # again: an empty attempt between
    twice = journal("web1", WEB1_ALONE, WEB1_WAVE, rollbacks=2)
    assert [len(a) for a in attempts(twice)] == [len(WEB1_ALONE), 0, len(WEB1_WAVE)]
    assert result("web1", twice, 400).alone == pytest.approx(127)


@pytest.mark.parametrize(
    "records",
    [WEB1_ALONE, WEB1_WAVE, [mark("web1", ROLLED_BACK, T), *WEB1_WAVE]],
    ids=["no-rollback", "wave-only", "nothing-before-the-rollback"],
)
def test_no_cutover_before_a_rollback_is_refused(records):
    with pytest.raises(NoCutover):
        result("web1", records, 400)


def test_the_wave_unfinished_is_refused():
    unfinished = journal("web1", WEB1_ALONE, WEB1_WAVE[:-3])  # no final-copy-done yet
    with pytest.raises(NoCutover):
        result("web1", unfinished, 400)


def test_rolled_back_until_the_next_cutover_begins():
    back = journal("web1", WEB1_ALONE, [])
    assert rolled_back(back)
    presynced = back + WEB1_WAVE[: WEB1_WAVE.index(mark("web1", DOWNTIME_START, T + 2000))]
    assert rolled_back(presynced)  # a new attempt's warm copies: still back on Xen
    assert not rolled_back(JOURNALS["web1"])
    assert not rolled_back(WEB1_ALONE)


def test_the_ratios():
    found = results()
    assert wave_ratio(found, WAVE_RUN) == pytest.approx(1250 / 470)  # mail1 the slowest
    assert worst(found).guest == "legacy1"
    assert worst(found).ratio == pytest.approx(162 / 146)


def test_the_summary_line():
    assert summary_line(results(), WAVE_RUN) == (
        "bench wave: guests=3 ratio=2.66 worst_downtime_ratio=1.11 worst_projection_error=- "
        "windows_during_boot=true"
    )
    assert summary_line(results(), WAVE_RUN, during_boot=False).endswith(
        " windows_during_boot=false"
    )


def spec(name: str) -> SimpleNamespace:
    """What projected_at reads of a guest's inventory entry."""
    return SimpleNamespace(name=name, boot_time=90, integrity_check="staged")


def projected_results() -> dict[str, Result]:
    return {
        name: result(name, records, ALONE_RUNS[name], spec(name), JOURNALS)  # type: ignore[arg-type]
        for name, records in JOURNALS.items()
    }


def test_each_cutover_against_what_was_projected_just_before_it():
    found = projected_results()
    web1, legacy1 = found["web1"], found["legacy1"]
    # web1 alone went first: assumed shutdown and fix-ups, configured boot, nothing measured
    assert web1.alone_projected == Projected(30 + (10 + 10) + (10 + 10) + 20 + 90, False)
    # legacy1 alone, after web1's cutover: web1's shutdown, fix-ups and boot, its own
    # last warm passes for its copies and (staged) its check
    assert legacy1.alone_projected == Projected(10 + (10 + 10) + (10 + 10) + 15 + 80, True)
    # in the wave, legacy1 from its own cutover alone (rolled back): all but the copies
    assert legacy1.wave_projected == Projected(20 + (10 + 10) + (10 + 2) + 14 + 95, True)
    assert legacy1.errors() == [
        pytest.approx(abs(145 - 146) / 146),
        pytest.approx(abs(161 - 162) / 162),
    ]
    # web1 in the wave, from its own cutover alone: 10 + 20 + 15 + 15 + 80
    assert web1.errors() == [pytest.approx(abs(140 - 132) / 132)]  # only the informed one


def test_the_table_and_summary_with_the_projections():
    found = list(projected_results().values())
    lines = table(found, WAVE_RUN)
    assert (
        "  web1       alone projected 180.0 s (nothing measured), actual 127.0 s, error 0.42"
        in lines
    )
    worst_error = max(e for r in found for e in r.errors())
    assert f" worst_projection_error={worst_error:.2f} " in lines[-1]


def test_the_table_in_the_order_of_the_windows():
    lines = table(list(reversed(results())), WAVE_RUN)
    rows = [line.split() for line in lines[1:4]]
    # guest, alone: downtime, run; wave: its window after the first began, downtime, ratio
    assert [(r[0], r[1], r[3], " ".join(r[5:8]), r[9], r[11]) for r in rows] == [
        ("web1", "127.0", "400.0", "+0.0 to +132.0", "132.0", "1.04"),
        ("legacy1", "146.0", "380.5", "+140.0 to +302.0", "162.0", "1.11"),
        ("mail1", "136.0", "470.0", "+310.0 to +451.0", "141.0", "1.04"),
    ]
    assert "slowest alone (mail1) 470.0 s = 2.66" in lines[4]
    assert lines[-1] == summary_line(results(), WAVE_RUN)


def test_a_window_that_begins_before_the_last_answered_shows_it():
    # a cutover that starts the next round while the last guest boots: legacy1's window
    # began 20 s before web1 answered
    overlapped = [
        result("web1", JOURNALS["web1"], 400),
        result(
            "legacy1",
            journal(
                "legacy1",
                LEGACY1_ALONE,
                move("legacy1", T + 2112, 21, {"/": (4, 9), "/var": (1, 6)}, {"/": 10}, 14, 110),
            ),
            380.5,
        ),
    ]
    rows = [line.split() for line in table(overlapped, 800)[1:3]]
    assert [" ".join(r[5:8]) for r in rows] == ["+0.0 to +132.0", "+112.0 to +272.0"]
