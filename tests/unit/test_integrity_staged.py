"""The staged integrity check (``integrity: staged``), both halves run here with the real
rsync between two local trees (rsync ignores ``-e`` between local paths), as
``sync.identical`` builds them:

- before the downtime, against the running guest: every file's content read; a content
  difference under the same size and time counts, what the guest changed meanwhile is
  said (``X2K-LIVE``) and not counted; the marker is touched as it begins;
- just before the stop, against the running guest again: the content of the regular
  files whose inode changed since the marker (what the catch-up pass wrote), counted as
  before; the marker moved to when it began, unless a difference counted;
- in the downtime: all metadata, then the content of the regular files whose inode
  changed since the marker (names from the tree through a NUL-separated list), or of
  every file without a marker.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from operations.sync import RSYNC, _before_script, _caught_up_script, _since_script, _transport
from tests.unit.test_integrity_rsync import build, rsync, same_time

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setfacl"),
    reason="needs root (owners, device nodes, capabilities) and setfacl (apt: acl)",
)

ENDS = _transport("/nonexistent/key", "/nonexistent/known_hosts", ["/own-file"])


def run(script: str, env: dict | None = None) -> tuple[int, list[bytes], list[bytes]]:
    """The script as x2k-journal runs it: its exit code, the X2K-DIFF lines (counted) and
    the X2K-LIVE ones (said)."""
    done = subprocess.run(
        ["sh", "-c", script, "x2k-integrity"], capture_output=True, check=False, env=env
    )
    lines = done.stdout.splitlines()
    assert done.stderr == b"" or done.returncode != 0, done.stderr
    return (
        done.returncode,
        [line for line in lines if line.startswith(b"X2K-DIFF ")],
        [line for line in lines if line.startswith(b"X2K-LIVE ")],
    )


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path, Path]:
    source, dest = tmp_path / "source", tmp_path / "dest"
    build(source)
    dest.mkdir()
    copied = rsync(RSYNC, source, dest)
    assert copied.returncode == 0, copied.stderr
    # A file of the destination's own (excluded), its directory's time kept.
    same_time(dest, lambda: (dest / "own-file").write_text("the destination's\n"))
    return source, dest, tmp_path / "state/checked/web1/integrity-before::"


def before(source: Path, dest: Path, marker: Path) -> tuple[int, list[bytes], list[bytes]]:
    return run(_before_script(str(marker), ENDS, f"{source}/", f"{dest}/"))


def since(source: Path, dest: Path, marker: Path) -> tuple[int, list[bytes], list[bytes]]:
    return run(_since_script(str(marker), ENDS, f"{source}/", f"{dest}/"))


def caught_up(source: Path, dest: Path, marker: Path) -> tuple[int, list[bytes], list[bytes]]:
    return run(_caught_up_script(str(marker), ENDS, f"{source}/", f"{dest}/"))


def catch_up(source: Path, dest: Path) -> None:
    """After the first half: the guest writes two files, the catch-up pass copies them."""
    time.sleep(0.05)
    for name in ("etc/passwd", "srv/with space"):
        (source / name).write_text("changed after the check before the downtime\n")
    assert rsync(RSYNC, source, dest).returncode == 0


def corrupt(path: Path) -> None:
    """Another content under the same size and time."""
    same_time(path, lambda: path.write_bytes(path.read_bytes().swapcase()))


def test_before_a_faithful_warm_copy_counts_nothing_and_touches_the_marker(trees):
    source, dest, marker = trees
    assert before(source, dest, marker) == (0, [], [])
    assert marker.is_file()


def test_before_what_the_running_guest_changes_is_said_not_counted(trees):
    source, dest, marker = trees
    (source / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")  # new time
    (source / "srv/new").write_text("written after the warm copy\n")
    (source / "srv/owned").unlink()
    rc, counted, said = before(source, dest, marker)
    assert (rc, counted) == (0, [])
    names = {line.split(None, 2)[2] for line in said}
    assert {b"etc/passwd", b"srv/new", b"srv/owned"} <= names, said


def test_before_what_the_guest_changed_is_said_twenty_lines_at_most(trees):
    source, dest, marker = trees
    for n in range(25):
        (source / f"srv/log.{n}").write_text("a busy guest's new file\n")
    rc, counted, said = before(source, dest, marker)
    assert (rc, counted) == (0, [])
    assert len(said) == 21, said
    more = re.fullmatch(rb"X2K-LIVE and (\d+) more", said[-1])
    assert more and int(more[1]) >= 5, said  # the 25 files (srv/'s time, as it falls)


def test_before_a_content_difference_under_the_same_size_and_time_counts(trees):
    source, dest, marker = trees
    corrupt(dest / "etc/passwd")
    rc, counted, said = before(source, dest, marker)
    assert rc == 0  # x2k-journal fails the step on the counted line
    assert counted == [b"X2K-DIFF >fc........ etc/passwd"], (counted, said)


def test_in_the_downtime_a_faithful_final_copy_has_no_difference(trees):
    source, dest, marker = trees
    assert before(source, dest, marker) == (0, [], [])
    time.sleep(0.05)
    for name in ("etc/passwd", "srv/with space"):
        (source / name).write_text("changed after the check before the downtime\n")
    assert rsync(RSYNC, source, dest).returncode == 0  # the final copy
    assert since(source, dest, marker) == (0, [], [])


def test_in_the_downtime_what_the_final_copy_wrote_wrong_is_caught(trees):
    """The final copy wrote passwd and a file with a newline in its name; each came out
    with other bytes under the right size and time: the content half reads them, odd
    name and all, and finds both."""
    source, dest, marker = trees
    assert before(source, dest, marker) == (0, [], [])
    time.sleep(0.05)
    odd = os.path.join(bytes(source / "srv"), b"new\nline")
    with open(odd, "wb") as out:
        out.write(b"changed: odd name\n")
    (source / "etc/passwd").write_text("changed after the check before the downtime\n")
    assert rsync(RSYNC, source, dest).returncode == 0
    corrupt(dest / "etc/passwd")
    corrupt(Path(os.path.join(bytes(dest / "srv"), b"new\nline").decode(errors="surrogateescape")))
    rc, counted, _ = since(source, dest, marker)
    assert rc == 0
    assert sorted(counted) == [
        b"X2K-DIFF >fc........ etc/passwd",
        b"X2K-DIFF >fc........ srv/new\\#012line",
    ], counted


def test_in_the_downtime_a_metadata_difference_is_caught_before_any_content(trees):
    source, dest, marker = trees
    assert before(source, dest, marker) == (0, [], [])
    (dest / "bin/ping").chmod(0o700)
    rc, counted, _ = since(source, dest, marker)
    assert (rc, counted) == (0, [b"X2K-DIFF .f...p..... bin/ping"])


def test_in_the_downtime_a_metadata_difference_alone_is_said_though_content_differs_too(trees):
    """The content half runs beside the metadata half; its answer is not said once the
    metadata differs (those differences already stop the cutover)."""
    source, dest, marker = trees
    assert before(source, dest, marker) == (0, [], [])
    time.sleep(0.05)
    (source / "etc/passwd").write_text("changed after the check before the downtime\n")
    assert rsync(RSYNC, source, dest).returncode == 0
    corrupt(dest / "etc/passwd")
    (dest / "bin/ping").chmod(0o700)
    rc, counted, _ = since(source, dest, marker)
    assert (rc, counted) == (0, [b"X2K-DIFF .f...p..... bin/ping"])


def test_in_the_downtime_a_failed_metadata_half_fails_once_the_content_half_ends(trees, tmp_path):
    """A source that cannot be read fails the check with rsync's code; the content half,
    run beside it, is waited for, and the temporary files are removed."""
    source, dest, marker = trees
    assert before(source, dest, marker) == (0, [], [])
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    script = _since_script(str(marker), ENDS, f"{source}/missing/", f"{dest}/")
    rc, counted, _ = run(script, env=env)
    assert rc == 23, rc  # rsync: partial transfer (the source is missing)
    assert counted == []
    assert list(scratch.iterdir()) == []


def test_in_the_downtime_content_checked_before_it_is_not_read_again(trees):
    """Scope, not a gap: a file no copy wrote since the check before the downtime was
    read then; its inode did not change since, so it is not read again."""
    source, dest, marker = trees
    corrupt(dest / "etc/passwd")  # before the check: that check would have counted it
    assert before(source, dest, marker)[1] == [b"X2K-DIFF >fc........ etc/passwd"]
    assert since(source, dest, marker) == (0, [], [])


def test_in_the_downtime_without_a_marker_every_file_s_content_is_read(trees):
    source, dest, marker = trees
    corrupt(dest / "etc/passwd")
    rc, counted, _ = since(source, dest, marker)
    assert (rc, counted) == (0, [b"X2K-DIFF >fc........ etc/passwd"])


def test_after_the_catch_up_a_faithful_copy_counts_nothing_and_moves_the_marker(trees):
    source, dest, marker = trees
    assert before(source, dest, marker) == (0, [], [])
    first = marker.stat().st_mtime_ns
    catch_up(source, dest)
    done = subprocess.run(
        ["sh", "-c", _caught_up_script(str(marker), ENDS, f"{source}/", f"{dest}/"), "x"],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert b"X2K-CONTENT 2 files changed since the last check" in done.stdout, done.stdout
    assert b"X2K-DIFF" not in done.stdout and b"X2K-LIVE" not in done.stdout, done.stdout
    assert marker.stat().st_mtime_ns > first, "the marker was not moved"
    assert not marker.with_name(marker.name + ".next").exists()
    # The window's half then reads none of them again: the final copy wrote nothing.
    assert (
        b"X2K-CONTENT 0 files"
        in subprocess.run(
            ["sh", "-c", _since_script(str(marker), ENDS, f"{source}/", f"{dest}/"), "x"],
            capture_output=True,
            check=True,
        ).stdout
    )


def test_after_the_catch_up_what_it_wrote_wrong_counts_and_the_marker_stays(trees):
    """A file the catch-up wrote, with other bytes under the right size and time: it
    counts, and the marker stays where it was, so the window's half reads it again."""
    source, dest, marker = trees
    assert before(source, dest, marker) == (0, [], [])
    first = marker.stat().st_mtime_ns
    catch_up(source, dest)
    corrupt(dest / "etc/passwd")
    rc, counted, said = caught_up(source, dest, marker)
    assert rc == 0  # x2k-journal fails the step on the counted line
    assert counted == [b"X2K-DIFF >fc........ etc/passwd"], (counted, said)
    assert marker.stat().st_mtime_ns == first
    assert since(source, dest, marker)[1] == [b"X2K-DIFF >fc........ etc/passwd"]


def test_after_the_catch_up_what_the_guest_changes_since_is_said_not_counted(trees):
    source, dest, marker = trees
    assert before(source, dest, marker) == (0, [], [])
    catch_up(source, dest)
    (source / "etc/passwd").write_text("changed again, after the catch-up\n")
    (source / "srv/with space").unlink()
    rc, counted, said = caught_up(source, dest, marker)
    assert (rc, counted) == (0, [])
    assert [line.split(None, 2)[2] for line in said] == [b"etc/passwd"], said


def test_after_the_catch_up_without_a_marker_every_file_s_content_is_read(trees):
    source, dest, marker = trees
    corrupt(dest / "etc/passwd")
    rc, counted, _ = caught_up(source, dest, marker)
    assert (rc, counted) == (0, [b"X2K-DIFF >fc........ etc/passwd"])
    assert marker.is_file()
