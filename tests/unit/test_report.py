"""xen2kvm.report: a guest's state, copies, passes and phases from real journal samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from xen2kvm import report
from xen2kvm.downtime import project

JOURNALS = Path(__file__).resolve().parents[1] / "data" / "journals"
NOW = 1796114840.0  # after every sample was written


def load(guest: str) -> list[dict]:
    return report.parse_journal((JOURNALS / f"{guest}.jsonl").read_text(), guest)


def of(guest: str, destination: str = "kvm1") -> report.GuestReport:
    return report.guest_report(guest, destination, load(guest))


@pytest.mark.parametrize(
    ("guest", "state"),
    [
        ("web1", report.MOVED),
        ("legacy1", report.PRESYNC),
        ("mail1", report.IN_CUTOVER),
        ("legacy2", report.MOVED),
    ],
)
def test_state_from_the_milestones(guest, state):
    assert of(guest).state == state


def test_no_journal_is_not_started():
    empty = report.guest_report("db9", "kvm1", [])
    assert (empty.state, empty.copies, empty.phases) == (report.NOT_STARTED, (), ())


def test_a_rollback_with_nothing_after_is_rolled_back():
    records = load("legacy1")
    upto = next(i for i, r in enumerate(records) if r["step"] == "rolled-back")
    assert report.guest_state(records[: upto + 1]) == report.ROLLED_BACK_STATE


def test_a_rollback_starts_a_new_attempt():
    legacy1 = of("legacy1")
    assert legacy1.attempts == 2
    assert [c.name for c in legacy1.copies] == ["presync:/"]


def test_presync_passes_sum_all_filesystems_of_each_run():
    assert of("web1").presync_passes == (80 + 19, 47 + 19)


def test_the_catch_up_before_the_window_is_a_warm_pass_of_its_own():
    def ran(step: str, start: float, size: int) -> list[dict]:
        return [
            {"guest": "web1", "step": step, "event": "start", "time": start},
            {"guest": "web1", "step": step, "event": "end", "time": start + 1, "rc": 0,
             "bytes": size},
        ]  # fmt: skip

    records = [
        *ran("presync:/", 0, 800), *ran("presync:/var", 2, 90), *ran("presync:/", 4, 7),
        *ran("catchup:/", 10, 50), *ran("catchup:/var", 12, 5), *ran("cutover:/", 20, 2),
    ]  # fmt: skip
    copies = report.copy_spans(records)
    assert [span.kind for span in copies] == ["presync"] * 5 + ["cutover"]
    assert report.presync_passes(copies) == (890, 7, 55)


def test_final_delta_sums_the_final_copies():
    assert of("web1").final_delta == 21 + 19
    assert of("legacy2").final_delta == 21


def test_downtime_is_shutdown_to_answering():
    web1 = of("web1")
    assert web1.downtime == pytest.approx(1796114816.416 - 1796114812.240)
    assert (web1.downtime_start, web1.downtime_end) == (1796114812.240, 1796114816.416)


def test_phases_between_the_milestones():
    phases = {p.name: p.duration(NOW) for p in of("web1").phases}
    assert phases == pytest.approx(
        {
            "shutdown": 1796114813.248 - 1796114812.240,
            "final copy": 1796114813.376 - 1796114813.248,
            "fix-ups": 1796114814.390 - 1796114813.376,
            "boot": 1796114816.416 - 1796114814.390,
            "announce": 1796114817.436 - 1796114816.416,
        }
    )


def test_a_rehome_has_the_same_phases():
    assert [p.name for p in of("legacy2", "xen2").phases] == [
        "shutdown",
        "final copy",
        "fix-ups",
        "boot",
        "announce",
    ]


def test_an_open_copy_runs_up_to_now():
    mail1 = of("mail1")
    (running,) = mail1.open_steps
    assert running.name == "cutover:/"
    assert running.duration(NOW) == pytest.approx(NOW - 1796114829.950)
    assert [(p.name, p.end) for p in mail1.phases][-1] == ("final copy", None)


def test_downtime_so_far_while_down():
    mail1 = of("mail1")
    assert mail1.downtime is None
    assert mail1.downtime_so_far(NOW) == pytest.approx(NOW - 1796114828.912)


def test_a_stopped_copy_is_closed_and_failed():
    records = [
        {"step": "presync:/", "event": "start", "time": 10.0},
        {"step": "presync:/", "event": "stopped", "time": 12.0, "pid": 7},
    ]
    (copy,) = report.copy_spans(records)
    assert (copy.end, copy.rc) == (12.0, -1)


def test_projected_downtime_is_the_one_before_the_cutover_began():
    web1 = of("web1")
    records = load("web1")
    began = next(i for i, r in enumerate(records) if r["step"] == "downtime-start")
    before = project(records[:began], 90)
    assert before is not None and web1.projected_downtime == before.total
    assert web1.verify is None  # a hook: the verify results are not in the journal yet


def test_projected_downtime_with_what_the_others_here_had_measured_by_then():
    records = load("web1")
    began = next(i for i, r in enumerate(records) if r["step"] == "downtime-start")
    start = records[began]["time"]
    # another guest's cutover on the same host, answered before web1's began: its shutdown
    # (3 s), fix-ups (5 s) and boot (40 s) stand in for web1's assumptions and boot_time
    other = [
        {"step": "downtime-start", "event": "mark", "time": start - 300},
        {"step": "cutover:/", "event": "start", "time": start - 297},
        {"step": "cutover:/", "event": "end", "time": start - 290, "rc": 0, "bytes": 9},
        {"step": "final-copy-done", "event": "mark", "time": start - 285},
        {"step": "kvm-answering", "event": "mark", "time": start - 245},
    ]
    later = [{**r, "time": r["time"] + 1000} for r in other]  # after web1's began: unknown
    alone = project(records[:began], 90)
    assert alone is not None
    shared = sum(p.seconds for p in alone.parts if p.name in ("shutdown", "fix-ups", "boot"))
    found = report.guest_report("web1", "kvm1", records, journals={"web1": records, "db1": other})
    assert found.projected_downtime == pytest.approx(alone.total - shared + 3 + 5 + 40)
    late = report.guest_report("web1", "kvm1", records, journals={"db1": later})
    assert late.projected_downtime == pytest.approx(alone.total)


def test_no_projection_before_a_warm_copy():
    assert report.guest_report("db9", "kvm1", []).projected_downtime is None


def test_a_broken_line_names_host_file_and_line():
    with pytest.raises(report.JournalReadError, match=r"kvm1:/j/web1\.jsonl:2: .*remove it"):
        report.parse_journal(
            '{"step":"x","event":"mark","time":1}\n{"oops"\n', "kvm1:/j/web1.jsonl"
        )


def test_timeline_has_a_row_per_guest_and_marks_the_downtime():
    reports = [of("web1"), of("mail1"), report.guest_report("db9", "kvm1", [])]
    line = report.timeline(reports, NOW)
    assert [row.guest for row in line.rows] == ["web1", "mail1", "db9"]
    web1, mail1, db9 = line.rows
    assert web1.downtime is not None and mail1.downtime is not None and db9.downtime is None
    assert all(line.left <= bar.x <= line.width for row in line.rows for bar in row.bars)
    assert any("open" in bar.css for bar in mail1.bars)
    assert mail1.downtime.x + mail1.downtime.width == pytest.approx(line.width - 50, abs=1)


def test_markdown_lists_every_guest():
    reports = [of("web1"), of("mail1"), report.guest_report("db9", "kvm1", [])]
    text = report.render("report.md.j2", reports, NOW, "wave 1")
    assert "| web1 | kvm1 | moved | 4.2s |" in text
    assert "| mail1 | kvm1 | in cutover |" in text and " so far |" in text
    assert "| cutover:/ | 08:47:09 | running |" in text
    assert "No journal yet on kvm1: not started." in text


def test_html_escapes_guest_data():
    evil = report.guest_report("<script>alert(1)</script>", "kvm1&<b>", load("web1"))
    text = report.render("report.html.j2", [evil], NOW, "<i>t</i>")
    assert "<script>alert" not in text and "&lt;script&gt;" in text
    assert "kvm1&amp;&lt;b&gt;" in text and "<i>t</i>" not in text


def test_html_is_self_contained():
    text = report.render("report.html.j2", [of("web1")], NOW, "wave 1")
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text and "<link" not in text and "src=" not in text


@pytest.mark.parametrize(
    ("seconds", "text"), [(None, "-"), (4.25, "4.2s"), (185, "3m05s"), (7260, "2h01m")]
)
def test_duration(seconds, text):
    assert report.duration(seconds) == text


def test_a_presync_running_on_the_lab():
    text = (JOURNALS / "lab-kvm1-web1-presync-running.jsonl").read_text()
    web1 = report.guest_report("web1", "kvm1", report.parse_journal(text, "kvm1"))
    assert web1.state == report.PRESYNC
    assert [(s.name, s.end) for s in web1.open_steps] == [("presync:/", None)]
    assert (web1.presync_passes, web1.phases, web1.downtime_so_far(NOW)) == ((), (), None)


def check(step: str, at: float, differences: int, rc: int = 0) -> list[dict]:
    """An integrity check's start and end, as x2k-journal writes them."""
    return [
        {"guest": "web1", "step": step, "event": "start", "time": at},
        {"guest": "web1", "step": step, "event": "end", "time": at + 4, "rc": rc,
         "differences": differences},
    ]  # fmt: skip


def test_integrity_says_each_filesystem_s_differences():
    records = load("web1")
    assert report.guest_report("web1", "kvm1", records).integrity == "-"  # before any check
    clean = [*records, *check("integrity:/", NOW - 60, 0), *check("integrity:/var", NOW - 50, 0)]
    assert report.guest_report("web1", "kvm1", clean).integrity == "0 differences (/, /var)"
    lost = [*clean, *check("integrity:/var", NOW - 40, 3)]
    assert report.guest_report("web1", "kvm1", lost).integrity == "3 differences in /var"
    broken = [*clean, *check("integrity:/", NOW - 30, 0, rc=255)]
    assert report.guest_report("web1", "kvm1", broken).integrity == "did not complete in /"


def test_integrity_skipped_says_so():
    mark = {"guest": "web1", "step": "integrity-skipped", "event": "mark", "time": NOW - 30}
    assert report.guest_report("web1", "kvm1", [*load("web1"), mark]).integrity == "skipped"
