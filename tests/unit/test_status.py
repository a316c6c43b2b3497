"""xen2kvm.status: rsync's progress2 output (real, from local rsync) and the status table."""

from __future__ import annotations

from pathlib import Path

import pytest

from xen2kvm import report, status

DATA = Path(__file__).resolve().parents[1] / "data"
NOW = 1796114840.0


def progress(name: str) -> str:
    return (DATA / "progress" / name).read_text()


def mail1() -> report.GuestReport:
    text = (DATA / "journals" / "mail1.jsonl").read_text()
    return report.guest_report("mail1", "kvm1", report.parse_journal(text, "mail1"))


def test_the_last_progress_line_of_a_running_copy():
    found = status.parse_progress(progress("rsync-midrun.out"))
    assert found == status.Progress(16272192, 46, 4.88 * 1024**2, "0:00:03")
    assert found.total == pytest.approx(35_000_000, rel=0.02)
    assert found.eta == pytest.approx((found.total - found.bytes) / found.rate)


def test_a_finished_copy_with_its_stats_after_the_progress():
    found = status.parse_progress(progress("rsync-done.out"))
    assert (found.bytes, found.percent, found.total) == (35000141, 100, 35000141)
    assert found.eta == 0


@pytest.mark.parametrize("text", ["", "building file list\n", "sent 1 bytes  received 2\n"])
def test_no_progress_line(text):
    assert status.parse_progress(text) is None


def test_zero_percent_has_no_total():
    found = status.parse_progress("\r         32,768   0%    0.00kB/s    0:00:00  ")
    assert (found.bytes, found.total, found.eta) == (32768, None, None)


def test_a_running_copy_shows_bytes_rate_eta_and_downtime_so_far():
    found = status.guest_status(mail1(), progress("rsync-midrun.out"), NOW)
    assert (found.state, found.step) == (report.IN_CUTOVER, "cutover:/")
    assert found.copied == 16272192 and found.total and found.eta is not None
    assert found.down and found.downtime == pytest.approx(NOW - 1796114828.912)


def test_progress_is_ignored_when_no_copy_runs():
    text = (DATA / "journals" / "web1.jsonl").read_text()
    web1 = report.guest_report("web1", "kvm1", report.parse_journal(text, "web1"))
    found = status.guest_status(web1, progress("rsync-done.out"), NOW)
    assert (found.step, found.copied, found.down) == (None, None, False)
    assert found.downtime == pytest.approx(4.176)


def test_table_is_aligned_one_line_a_guest():
    rows = [
        status.guest_status(mail1(), progress("rsync-midrun.out"), NOW),
        status.guest_status(report.guest_report("db9", "kvm1", []), None, NOW),
    ]
    lines = status.table(rows).splitlines()
    assert lines[0].split() == list(status.COLUMNS)
    assert lines[1].split()[:4] == ["mail1", "kvm1", "in", "cutover"]
    assert "15.5M/33.7M (46%)" in lines[1] and "4.9M/s" in lines[1] and "so far" in lines[1]
    assert lines[2].split()[:4] == ["db9", "kvm1", "not", "started"]
    assert lines[1].index("cutover:/") == lines[0].index("STEP")
