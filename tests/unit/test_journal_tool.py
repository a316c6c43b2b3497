"""x2k-journal, the shell tool that runs and records each step on the KVM hosts, run here
with the real ``sh``: what it records, and what it does with a command a dead run left."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from facts.journal import MigrationChanges
from xen2kvm.waiting import wait_until

TOOL = Path(__file__).resolve().parents[2] / "files" / "x2k-journal.sh"


def tool(state: Path, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(TOOL), str(state), "web1", *args],
        capture_output=True, text=True, timeout=60, check=False, **kwargs,
    )  # fmt: skip


def records(state: Path) -> list[dict]:
    lines = (state / "journal" / "web1.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line]


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_run_records_start_end_rc_and_output(tmp_path):
    result = tool(tmp_path, "presync:/", "run", "sh", "-c", "echo copied; exit 3")
    assert result.returncode == 3
    assert result.stdout == "copied\n"
    start, end = records(tmp_path)
    assert (start["step"], start["event"]) == ("presync:/", "start")
    assert (end["step"], end["event"], end["rc"]) == ("presync:/", "end", 3)
    assert not (tmp_path / "running" / "web1").exists(), "nothing runs any more"


def test_run_records_the_bytes_rsync_received(tmp_path):
    stats = "printf 'Number of files: 3\\nTotal bytes received: 1,234,567\\n'"
    assert tool(tmp_path, "presync:/var", "run", "sh", "-c", stats).returncode == 0
    assert records(tmp_path)[-1]["bytes"] == 1234567


def test_progress_holds_only_each_guest_s_own_output(tmp_path):
    """progress/GUEST is where status reads a guest's copy: the tool keeps nothing else
    there (a "web1.summary" beside it would be the output file of a guest so named)."""
    assert tool(tmp_path, "presync:/", "run", "sh", "-c", "echo copied").returncode == 0
    assert sorted(p.name for p in (tmp_path / "progress").iterdir()) == ["web1"]


def test_mark(tmp_path):
    assert tool(tmp_path, "cutover-complete", "mark").returncode == 0
    assert [(r["step"], r["event"]) for r in records(tmp_path)] == [("cutover-complete", "mark")]


@dataclass
class Left:
    state: Path
    run: subprocess.Popen  # the dead run's x2k-journal, still waiting
    pid: int  # the recorded command: its process group
    group: list[int]
    step: str


@pytest.fixture
def left_running(tmp_path):
    """A copy (a command with a child, as rsync has its ssh) whose controller died: its
    x2k-journal keeps waiting for it, as it does over SSH without a terminal."""
    run = subprocess.Popen(
        ["sh", str(TOOL), str(tmp_path), "web1", "presync:/", "run",
         "sh", "-c", "sleep 300 & sleep 300; wait"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    assert wait_until(lambda: (tmp_path / "running" / "web1").exists(), 10, 0.05)
    pid, _start, step = (tmp_path / "running" / "web1").read_text().split()
    found = subprocess.run(["pgrep", "-g", pid], capture_output=True, text=True, check=False)
    left = Left(tmp_path, run, int(pid), [int(p) for p in found.stdout.split()], step)
    yield left
    if run.poll() is None:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
    for each in left.group:
        if alive(each):
            os.kill(each, signal.SIGKILL)


def test_the_recorded_start_is_the_command_s_own(tmp_path):
    """The start time is field 22 of /proc/PID/stat, counted after the command's name,
    which may hold spaces and ") " (here a link to sh named so)."""
    odd = tmp_path / "a) b (c) d"
    odd.symlink_to("/bin/sh")
    run = subprocess.Popen(
        ["sh", str(TOOL), str(tmp_path / "state"), "web1", "presync:/", "run",
         str(odd), "-c", "sleep 300; exit 0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    running = tmp_path / "state" / "running" / "web1"
    try:
        assert wait_until(lambda: running.exists() and running.read_text().strip(), 10, 0.05)
        pid, start, step = running.read_text().split()
        stat = Path(f"/proc/{pid}/stat").read_text()
        assert "(a) b (c) d) " in stat, "the shell keeps its odd name (it does not exec)"
        assert stat.rsplit(") ", 1)[1].split()[19] == start
        assert step == "presync:/"
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()


def test_the_running_command_is_recorded_in_a_group_of_its_own(left_running):
    left = left_running
    assert left.step == "presync:/"
    assert os.getpgid(left.pid) == left.pid != os.getpgid(left.run.pid), "a group of its own"
    assert len(left.group) == 3, "the shell and its two sleeps"


def test_stop_ends_the_whole_command_and_the_journal_says_so(left_running):
    left = left_running
    result = tool(left.state, "-", "stop")
    assert result.returncode == 0, result.stderr
    assert "web1: stopping presync:/" in result.stderr
    assert not any(alive(each) for each in left.group), "every process of the command ended"
    assert left.run.wait(timeout=10) == 128 + signal.SIGTERM, "its x2k-journal ended with it"
    end, stopped = records(left.state)[-2:]
    assert (end["step"], end["event"], end["rc"]) == ("presync:/", "end", 128 + signal.SIGTERM)
    assert (stopped["step"], stopped["event"], stopped["pid"]) == ("presync:/", "stopped", left.pid)
    assert not (left.state / "running" / "web1").exists()


def test_stop_with_nothing_running_does_nothing(tmp_path):
    result = tool(tmp_path, "-", "stop")
    assert (result.returncode, result.stderr) == (0, "")


def test_stop_leaves_a_process_that_merely_reuses_the_pid(tmp_path):
    """The record names a pid that runs, but not the process that was recorded."""
    other = subprocess.Popen(["sleep", "300"])
    try:
        (tmp_path / "running").mkdir()
        (tmp_path / "running" / "web1").write_text(f"{other.pid} 1 presync:/\n")
        result = tool(tmp_path, "-", "stop")
        assert (result.returncode, result.stderr) == (0, "")
        assert other.poll() is None, "not ours: still running"
        assert not (tmp_path / "running" / "web1").exists(), "the stale record is gone"
    finally:
        other.kill()
        other.wait()


def test_a_signal_to_the_tool_reaches_the_command(left_running):
    left = left_running
    os.kill(left.run.pid, signal.SIGTERM)
    assert left.run.wait(timeout=10) == 128 + signal.SIGTERM
    assert wait_until(lambda: not any(alive(each) for each in left.group), 10, 0.05)


def test_check_records_the_differences_and_fails_on_any(tmp_path):
    found = "printf 'X2K-DIFF >fc.T...... etc/passwd\\nX2K-DIFF *deleting   srv/x\\nsent 12\\n'"
    result = tool(tmp_path, "integrity:/", "check", "sh", "-c", found)
    assert result.returncode == 1, result
    assert "X2K-DIFF >fc.T...... etc/passwd" in result.stdout
    assert "web1: integrity:/: 2 differences" in result.stderr
    end = records(tmp_path)[-1]
    found = (end["step"], end["event"], end["rc"], end["differences"])
    assert found == ("integrity:/", "end", 0, 2)


def test_check_without_differences_succeeds(tmp_path):
    result = tool(tmp_path, "integrity:/var", "check", "sh", "-c", "echo 'sent 12 bytes'")
    assert result.returncode == 0, result
    assert records(tmp_path)[-1]["differences"] == 0


def test_check_keeps_the_comparison_s_own_failure(tmp_path):
    result = tool(tmp_path, "integrity:/var", "check", "sh", "-c", "exit 23")
    assert result.returncode == 23
    assert (records(tmp_path)[-1]["rc"], records(tmp_path)[-1]["differences"]) == (23, 0)


# The boot watcher: the cutover starts a guest and goes on; the watcher marks its answer.


@pytest.fixture
def listener():
    """A TCP port on this machine that answers while the fixture lasts."""
    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()[1]
    server.close()


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as server:
        return server.getsockname()[1]  # closed again: nothing answers there


def steps(state: Path) -> list[tuple[str, str]]:
    return [(r["step"], r["event"]) for r in records(state)]


def test_the_watcher_marks_the_answer_and_wait_sees_it(tmp_path, listener):
    started = tool(tmp_path, "kvm-answering", "watch", "60", "127.0.0.1", str(listener))
    assert started.returncode == 0, started.stderr
    assert tool(tmp_path, "kvm-answering", "wait").returncode == 0
    assert steps(tmp_path) == [("kvm-answering", "mark")]
    assert tool(tmp_path, "kvm-answering", "marked").returncode == 0
    # Marked: a second watch starts nothing and marks nothing again.
    first = (tmp_path / "watching" / "web1").read_text()
    again = tool(tmp_path, "kvm-answering", "watch", "60", "127.0.0.1", str(listener))
    assert again.returncode == 0
    assert (tmp_path / "watching" / "web1").read_text() == first, "no second watcher"
    assert tool(tmp_path, "kvm-answering", "wait").returncode == 0
    assert steps(tmp_path) == [("kvm-answering", "mark")]


def test_the_watcher_returns_at_once_and_marks_when_the_port_opens(tmp_path):
    port = free_port()
    started = time.monotonic()
    assert tool(tmp_path, "kvm-answering", "watch", "60", "127.0.0.1", str(port)).returncode == 0
    assert time.monotonic() - started < 5, "the run goes on while the guest boots"
    assert tool(tmp_path, "kvm-answering", "marked").returncode == 1
    pid = int((tmp_path / "watching" / "web1").read_text().split()[0])
    assert alive(pid)
    with socket.create_server(("127.0.0.1", port)):
        opened = time.time()
        assert tool(tmp_path, "kvm-answering", "wait").returncode == 0
    (mark,) = records(tmp_path)
    assert opened <= float(mark["time"]) <= opened + 8, "marked when it answered"
    assert wait_until(lambda: not alive(pid), timeout=10)


def test_a_watch_that_times_out_marks_nothing_and_wait_says_so(tmp_path):
    port = free_port()
    assert tool(tmp_path, "kvm-answering", "watch", "2", "127.0.0.1", str(port)).returncode == 0
    waited = tool(tmp_path, "kvm-answering", "wait")
    assert waited.returncode == 3
    assert not (tmp_path / "journal" / "web1.jsonl").exists()


def test_a_rollback_ends_the_attempt_the_watcher_watched_for(tmp_path):
    port = free_port()
    assert tool(tmp_path, "kvm-answering", "watch", "60", "127.0.0.1", str(port)).returncode == 0
    pid = int((tmp_path / "watching" / "web1").read_text().split()[0])
    assert tool(tmp_path, "rolled-back", "mark").returncode == 0
    # The old watcher is no watcher of the new attempt: wait does not count on it.
    assert tool(tmp_path, "kvm-answering", "wait").returncode == 3
    with socket.create_server(("127.0.0.1", port)):
        assert wait_until(lambda: not alive(pid), timeout=15)
    assert steps(tmp_path) == [("rolled-back", "mark")], "nothing marked for the new attempt"
    assert tool(tmp_path, "kvm-answering", "marked").returncode == 1


def test_marked_reads_the_current_attempt_only(tmp_path):
    assert tool(tmp_path, "kvm-answering", "mark").returncode == 0
    assert tool(tmp_path, "kvm-answering", "marked").returncode == 0
    assert tool(tmp_path, "rolled-back", "mark").returncode == 0
    assert tool(tmp_path, "kvm-answering", "marked").returncode == 1


@pytest.mark.parametrize(
    "args",
    [
        ("60", "127.0.0.1; touch /tmp/x", "22"),
        ("60", "$(id)", "22"),
        ("", "127.0.0.1", "22"),
        ("60", "127.0.0.1", "22x"),
        ("60", "127.0.0.1"),
    ],
)
def test_watch_refuses_what_is_not_seconds_an_address_and_a_port(tmp_path, args):
    result = tool(tmp_path, "kvm-answering", "watch", *args)
    assert result.returncode == 2
    assert not (tmp_path / "watching").exists()


# What each copy changed in the tree, kept for the fix-ups until the next fixups-done.

RSYNC = ["rsync", "-aHAXx", "--numeric-ids", "--delete", "--stats", "--info=progress2",
         "--out-format=X2K-CHANGED %i %n"]  # fmt: skip
WATCHED = ("/boot", "/etc/inittab", "/etc/systemd/system/getty.target.wants",
           "/root/.ssh/authorized_keys", "/etc/fstab")  # fmt: skip


def touched(state: Path, paths: tuple[str, ...] = WATCHED) -> list[str]:
    """``facts.journal.MigrationChanges`` as it runs on the destination, here."""
    command = MigrationChanges().command(state_dir=str(state), guest="web1", paths=paths)
    result = subprocess.run(
        ["sh", "-c", command.get_raw_value()], capture_output=True, text=True, check=True
    )
    return MigrationChanges().process(result.stdout.splitlines())


def copy(state: Path, step: str, source: Path, dest: Path) -> subprocess.CompletedProcess:
    return tool(state, step, "run", *RSYNC, f"{source}/", f"{dest}/")


@pytest.fixture
def trees(tmp_path):
    """A guest's root and its copy, after a first copy and its fix-ups."""
    source, dest, state = tmp_path / "source", tmp_path / "dest", tmp_path / "state"
    for name in ("boot", "etc/systemd/system/getty.target.wants", "root/.ssh", "usr/bin"):
        (source / name).mkdir(parents=True)
    (source / "boot/vmlinuz-6.1.0-1").write_text("kernel")
    (source / "etc/inittab").write_text("1:2345:respawn:/sbin/getty 38400 hvc0\n")
    (source / "root/.ssh/authorized_keys").write_text("ssh-ed25519 AAAA key\n")
    (source / "usr/bin/tool").write_text("v1")
    dest.mkdir()
    assert copy(state, "presync:/", source, dest).returncode == 0
    # A warm copy keeps no names: until the fix-ups after it, anything may have changed.
    assert touched(state) == ["*"]
    assert tool(state, "fixups-done", "mark", "fstab,bootloader").returncode == 0
    return source, dest, state


def test_a_copy_keeps_the_names_it_changed_and_fixups_done_forgets_them(trees):
    source, dest, state = trees
    assert touched(state) == [], "forgotten at fixups-done"
    assert records(state)[-1]["redone"] == "fstab,bootloader"
    (source / "usr/bin/tool").write_text("v2, longer")
    result = copy(state, "cutover:/", source, dest)
    assert result.returncode == 0
    assert "X2K-CHANGED" not in result.stdout, "the names are kept, not printed"
    assert touched(state) == [], "nothing a fix-up depends on"
    (lists,) = (state / "changed" / "web1").glob("*.list")
    (line,) = lists.read_text().splitlines()
    assert line.startswith("cutover:/ >f.s") and line.endswith(" usr/bin/tool"), line


def test_the_catch_up_and_the_final_copy_both_keep_what_they_changed(trees):
    """The window's fix-ups redo what either copy since the last ones touched: the
    catch-up before the stop (the guest still runs), or the final copy after it."""
    source, dest, state = trees
    (source / "etc/inittab").write_text("1:2345:respawn:/sbin/getty 38400 ttyS0\n")
    assert copy(state, "catchup:/", source, dest).returncode == 0
    assert touched(state) == ["/etc/inittab"], "the catch-up's changes are kept"
    (source / "root/.ssh/authorized_keys").write_text("ssh-ed25519 BBBB other\n")
    assert copy(state, "cutover:/", source, dest).returncode == 0
    assert touched(state) == ["/etc/inittab", "/root/.ssh/authorized_keys"]
    assert not list((state / "changed" / "web1").glob("*.open")), "both ended"
    assert tool(state, "fixups-done", "mark", "getty,access").returncode == 0
    assert touched(state) == []


def test_a_final_copy_into_an_empty_tree_touches_everything(tmp_path):
    source, dest, state = tmp_path / "source", tmp_path / "dest", tmp_path / "state"
    (source / "boot").mkdir(parents=True)
    (source / "boot/vmlinuz-6.1.0-1").write_text("kernel")
    (source / "etc").mkdir()
    dest.mkdir()
    assert copy(state, "cutover:/", source, dest).returncode == 0
    # /etc made, on the way to each path below it; /root not there at all.
    assert touched(state) == ["/boot", "/etc/fstab", "/etc/inittab", WATCHED[2]]


def test_a_changed_kernel_and_a_recopied_key_are_touched(trees):
    source, dest, state = trees
    (source / "boot/vmlinuz-6.1.0-2").write_text("new kernel")
    (source / "root/.ssh/authorized_keys").write_text("ssh-ed25519 AAAA key\nother\n")
    assert copy(state, "cutover:/", source, dest).returncode == 0
    assert touched(state) == ["/boot", "/root/.ssh/authorized_keys"]
    assert touched(state, ("/etc/fstab",)) == []


def test_a_deleted_file_is_touched(trees):
    source, dest, state = trees
    (source / "etc/inittab").unlink()
    assert copy(state, "cutover:/", source, dest).returncode == 0
    assert touched(state) == ["/etc/inittab"]


def test_a_directory_on_the_way_replaced_by_a_link_is_touched(trees):
    source, dest, state = trees
    shutil.rmtree(source / "root/.ssh")
    (source / "root/.ssh").symlink_to("/etc")
    assert copy(state, "cutover:/", source, dest).returncode == 0
    assert "/root/.ssh/authorized_keys" in touched(state)


def test_a_new_file_beside_a_watched_one_touches_nothing(trees):
    source, dest, state = trees
    (source / "etc/hostname").write_text("web1\n")
    assert copy(state, "cutover:/", source, dest).returncode == 0
    changes = next((state / "changed" / "web1").glob("*.list")).read_text()
    assert "cutover:/ >f+++++++++ etc/hostname\n" in changes
    assert touched(state) == []


@pytest.mark.parametrize(
    ("line", "found"),
    [
        ("cutover:/ .d..t...... etc/", []),  # a directory's time: nothing below changed
        ("cutover:/ .d..t...... boot/", []),  # the fix-ups made /boot/grub in it
        ("cutover:/ .d..t...... etc/systemd/system/getty.target.wants/", []),
        ("cutover:/ .f...p..... root/.ssh/authorized_keys", []),  # its mode: not its lines
        ("cutover:/ .d...p..... etc/systemd/", []),
        ("cutover:/ cL+++++++++ etc/systemd", ["/etc/systemd/system/getty.target.wants"]),
        ("cutover:/ *deleting etc/", ["/etc/fstab", "/etc/inittab", WATCHED[2]]),
        ("cutover:/ .d..t...... ./", []),
        ("cutover:/ >f.st...... etc/inittab.bak", []),  # a name that starts the same
        ("cutover:/ cd+++++++++ boot/grub2/", ["/boot"]),
        ("cutover:/var .d..t...... ./", []),
        ("cutover:/boot >f+++++++++ a file name with spaces", ["/boot"]),
        ("cutover:/etc >f..t...... inittab", ["/etc/inittab"]),
    ],
)
def test_which_changes_touch_a_watched_path(tmp_path, line, found):
    changed = tmp_path / "changed" / "web1"
    changed.mkdir(parents=True)
    (changed / "1.list").write_text(line + "\n")
    assert touched(tmp_path) == found


def test_another_filesystem_s_names_are_below_its_mountpoint(tmp_path):
    source, dest, state = tmp_path / "boot", tmp_path / "dest", tmp_path / "state"
    source.mkdir()
    dest.mkdir()
    (source / "initrd.img-6.1.0-2").write_text("initrd")
    assert copy(state, "cutover:/boot", source, dest).returncode == 0
    assert touched(state) == ["/boot"]
    assert touched(state, ("/etc/fstab",)) == []


def test_a_copy_killed_with_its_tool_leaves_its_changes_unknown(trees):
    state = trees[2]
    run = subprocess.Popen(
        ["sh", str(TOOL), str(state), "web1", "cutover:/", "run", "sleep", "60"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert wait_until(lambda: list((state / "changed" / "web1").glob("*.open")), timeout=10)
    run.kill()  # the tool itself: nothing records what the copy did
    run.wait()
    assert touched(state) == ["*"]
    assert tool(state, "-", "stop").returncode == 0  # the next run's lock stops the copy


def test_fixups_done_refuses_what_is_not_fix_up_names(tmp_path):
    assert tool(tmp_path, "fixups-done", "mark", "boot loader;x").returncode == 2
    assert not (tmp_path / "journal" / "web1.jsonl").exists()


# A libvirt test driver's node (virsh -c test:///PATH): web1 defined but shut off, up
# running, as libvirt shows a domain whose qemu died before it answered, and one booting.
NODE = """<node>
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>web1</name><memory>524288</memory><os><type>hvm</type></os>
    <test:runstate>5</test:runstate>
  </domain>
  <domain type='test'>
    <name>up</name><memory>524288</memory><os><type>hvm</type></os>
  </domain>
</node>
"""


@pytest.fixture
def libvirt_node(tmp_path):
    node = tmp_path / "node.xml"
    node.write_text(NODE)
    return f"test://{node}"


def test_wait_ends_when_libvirt_shows_the_domain_shut_off(tmp_path, libvirt_node):
    state = tmp_path / "state"
    port = free_port()
    assert tool(state, "kvm-answering", "watch", "60", "127.0.0.1", str(port)).returncode == 0
    started = time.monotonic()
    waited = tool(state, "kvm-answering", "wait", libvirt_node, "web1")
    assert waited.returncode == 4, waited.stderr
    assert "web1 is shut off" in waited.stderr
    assert time.monotonic() - started < 30, "not the watcher's 60 s"
    assert tool(state, "kvm-answering", "marked").returncode == 1


def test_wait_goes_on_while_the_domain_runs(tmp_path, libvirt_node):
    state = tmp_path / "state"
    port = free_port()
    assert tool(state, "kvm-answering", "watch", "60", "127.0.0.1", str(port)).returncode == 0
    with socket.create_server(("127.0.0.1", port)):
        waited = tool(state, "kvm-answering", "wait", libvirt_node, "up")
    assert waited.returncode == 0, waited.stderr
    assert steps(state) == [("kvm-answering", "mark")]


def test_wait_takes_a_uri_and_a_domain_or_neither(tmp_path):
    waited = tool(tmp_path, "kvm-answering", "wait", "qemu:///system")
    assert waited.returncode == 2
    assert "usage" in waited.stderr
