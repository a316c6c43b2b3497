"""Benchmark: one guest's cutover downtime, against the floor of the same run, on the lab.

    xen2kvm lab exec -- python bench/downtime.py [--guest web1] [--churn-mib 50]
        [--write-kib-s 256] [--boots 3] [--log FILE]

Needs a lab where the guest is not migrated yet (a fresh ``xen2kvm lab up``); it migrates
it. The deploy itself brings the guest to the eve of its cutover (``--limit move_<guest>
--data phase=plan``, then prepare, then presync); then, in the running guest, about 2 % of
its files change (a line appended, or for a ``.gz`` a new time, under /usr/share and
/var/lib/dpkg/info) and CHURN_MIB MiB of new random data are written to /srv/x2k-bench;
from then on until it stops, as a server goes on writing, WRITE_KIB_S KiB a second more
(a new file a second and a line in a log, in /srv/x2k-bench/live). The cutover's
catch-up pass moves the churn while the guest still runs; its window's final copy moves
what was written after.

The floor of the same run: (a) the new data alone, pulled by the KVM host with a plain
``rsync -a --numeric-ids`` through the migration key and known_hosts presync used, timed
on the KVM host; (b) after the cutover, the KVM domain stopped and started by hand on the
KVM host, timed from ``virsh start`` to its SSH port answering there, BOOTS times (the
median: one boot of the lab's emulated guests varies by seconds); plus the shutdown
measured in the cutover. The cutover (``--data phase=cutover``) is timed, and the guest's
journal on the KVM host broken down by step: shutdown, set-up (from the Xen stop's end to
the first copy: the source mounted on the dom0; the key is let in and the connection
opened before the stop), each final copy, each integrity check, the time between them,
fix-ups, start (from ``final-copy-done`` to the KVM start's command, ``virsh start``,
in the run's output: the split-brain guard and what the start reads first) and boot
(from that command to the answer: the command itself counts with the boot, as in the
boot by hand); then each operation of the window, from the run's output (verbose: each
fact and command timed; ``--log FILE`` keeps it). The tool's share is the part of the
downtime that is neither the shutdown, the final rsync nor the boot, this run's
(``tool_share``) and with the boot by hand instead (``tool_share_hand``: two boots'
difference, which moves it by several hundredths from one run to the next).

Prints numbers, asserts none, and ends with one line ``bench downtime: guest=G
downtime_s=X floor_s=Y ratio=R tool_share=Z tool_share_hand=H projected_s=P``. Not part
of CI.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from operations.sync import module_source  # noqa: E402
from tests.lab.runs import JOURNALS, journal, journals  # noqa: E402
from xen2kvm.downtime import Peers, at_gate, project  # noqa: E402
from xen2kvm.inventory import Guest, KvmHost, load_fleet, move_group  # noqa: E402
from xen2kvm.journal import (  # noqa: E402
    ANSWERING,
    DOWNTIME_START,
    FINAL_COPY_DONE,
    current,
    is_copy,
    is_integrity,
    summarise,
)
from xen2kvm.lab.config import LabConfig  # noqa: E402

INVENTORY = "inventory/lab.py"  # the lab's, relative to the checkout
CHURN_PERCENT = 2  # of the guest's files, changed after the last warm pass
CHURN_DIR = "/srv/x2k-bench"  # the new data, in the guest (it moves with it)
WRITE_KIB_S = 256  # written a second from the churn on, until the guest stops
BOOTS = 3  # hand starts for the floor's boot: its median (one boot varies by seconds)

# --- the pure part: a journal (and the run's output) read into a breakdown ----------


@dataclass(frozen=True)
class Step:
    """One row of the breakdown."""

    name: str
    seconds: float
    note: str = ""
    moved: int | None = None  # a copy's bytes, when it says


@dataclass(frozen=True)
class Breakdown:
    """A cutover's downtime by step, from its journal; the rows add up to ``downtime``."""

    downtime: float  # downtime-start to the destination answering SSH
    shutdown: float  # downtime-start to the first final copy, less ``setup``
    setup: float  # what of that was attributed to mounting and the keys (the run's output)
    copies: tuple[Step, ...]  # each final copy (cutover:/, cutover:/var ...)
    checks: tuple[Step, ...]  # each integrity check
    between: float  # from the first copy's start to the last check's end, not in a step
    fixups: float  # the last copy or check's end to final-copy-done
    boot: float  # final-copy-done to SSH answering, less ``start``: the boot
    start: float = 0.0  # what of that was attributed to the start (the run's output)

    @property
    def final_rsync(self) -> float:
        return sum(step.seconds for step in self.copies)

    def rows(self) -> list[Step]:
        return [
            Step("shutdown", self.shutdown, "downtime-start to the first copy, less set-up"),
            Step("set-up", self.setup, "Xen stop's end to the first copy (output's times)"),
            *self.copies,
            *self.checks,
            Step("between steps", self.between, "between the copies and checks"),
            Step("fix-ups", self.fixups, f"last copy or check to {FINAL_COPY_DONE}"),
            Step("start", self.start, f"{FINAL_COPY_DONE} to the start command (output's times)"),
            Step("boot", self.boot, "the start command to answering"),
        ]

    def tool_share(self, boot: float | None = None) -> float:
        """(downtime - shutdown - final rsync - boot) / downtime; ``boot`` measured by
        hand (``virsh start`` to SSH answering), else this run's (from its start command
        to the answer)."""
        taken = self.shutdown + self.final_rsync + (self.boot if boot is None else boot)
        return (self.downtime - taken) / self.downtime if self.downtime > 0 else 0.0


class NoCutover(ValueError):
    """The journal holds no complete cutover in its current attempt."""


def breakdown(
    records: list[dict], setup: float | None = None, start: float | None = None
) -> Breakdown:
    """The last cutover of the current attempt (after its last ``downtime-start``), by
    step. ``setup``: the seconds between the Xen stop's end and the first final copy, as
    the run's output timed them (``setup_seconds``): taken off the shutdown. ``start``:
    the seconds from ``final-copy-done`` to the KVM start's command (``start_seconds``):
    taken off the boot."""
    attempt = current(records)
    starts = [i for i, r in enumerate(attempt) if r.get("step") == DOWNTIME_START]
    if not starts:
        raise NoCutover(f"no {DOWNTIME_START} in the journal's current attempt")
    summary = summarise(attempt[starts[-1] :])
    marks = summary.marks
    began = marks[DOWNTIME_START]
    answered = next((marks[m] for m in ANSWERING if m in marks), None)
    if FINAL_COPY_DONE not in marks or answered is None:
        raise NoCutover(
            f"the cutover that began at {began} did not end (no {FINAL_COPY_DONE}"
            f" and answering after it)"
        )
    done = marks[FINAL_COPY_DONE]
    finished = [c for c in summary.copies if c.end <= done]
    copies = [c for c in finished if is_copy(c.step, "cutover")]
    checks = [c for c in finished if is_integrity(c.step)]
    if not copies:
        raise NoCutover(f"no final copy between {DOWNTIME_START} and {FINAL_COPY_DONE}")
    first = min(c.start for c in copies)
    last = max(c.end for c in copies + checks)
    before = first - began
    attributed = min(max(setup or 0.0, 0.0), before)
    stepped = sum(c.end - c.start for c in copies + checks)
    started = min(max(start or 0.0, 0.0), answered - done)
    return Breakdown(
        downtime=answered - began,
        shutdown=before - attributed,
        setup=attributed,
        copies=tuple(
            Step(c.step, c.end - c.start, _copied(c.bytes, c.rc), c.bytes) for c in copies
        ),
        checks=tuple(Step(c.step, c.end - c.start, _checked(c.differences, c.rc)) for c in checks),
        between=(last - first) - stepped,
        fixups=done - last,
        boot=answered - done - started,
        start=started,
    )


def _copied(size: int | None, rc: int) -> str:
    moved = f"{size / 1024 / 1024:.1f} MiB moved" if size is not None else "bytes not recorded"
    return moved if rc == 0 else f"{moved}, rc {rc}"


def _checked(differences: int | None, rc: int) -> str:
    return f"{differences} differences" + ("" if rc == 0 else f", rc {rc}")


STARTING = "Starting operation: "
ANSI = re.compile(r"\x1b\[[0-9;]*m")
DEPLOY_FILE = re.compile(r"^[\w./-]+\.py \| ")


def setup_seconds(lines: Iterable[tuple[float, str]], guest: str, dom0: str) -> float | None:
    """From a cutover run's output, each line with the time it was read: the seconds from
    the end of the Xen stop (the start of the operation after ``GUEST: stopped on DOM0``)
    to the start of the guest's first final copy (the mounts on the dom0: the key is let
    in, the connection opened and the new disk opened before the downtime). None when the
    output does not show both."""
    started = list(_operations(lines))
    stop = f"{guest}: stopped on {dom0}"
    at = next((i for i, (_, op) in enumerate(started) if _named(op, stop)), None)
    if at is None or at + 1 >= len(started):
        return None
    stopped = started[at + 1][0]
    copy = f"{guest}: cutover copy of "
    first = next((when for when, op in started[at + 1 :] if op.startswith(copy)), None)
    return first - stopped if first is not None else None


def start_seconds(lines: Iterable[tuple[float, str]], guest: str) -> float | None:
    """From a cutover run's output: the seconds from the end of the guest's
    ``final-copy-done`` mark (the start of the operation after it) to its KVM start's
    command (``virsh ... start``, in a verbose output), or to the end of its KVM start
    (the start of the watch on its answer) in a quiet one: the split-brain guard and
    what the start reads first. None when the output does not show both."""
    timed = list(lines)
    started = list(_operations(timed))
    mark = f"{guest}: the new volumes are complete and let go"
    at = next((i for i, (_, op) in enumerate(started) if _named(op, mark)), None)
    if at is None or at + 1 >= len(started):
        return None
    begun = started[at + 1][0]
    watch = f"{guest}: started; its answer watched"
    end = next((when for when, op in started[at + 1 :] if op.startswith(watch)), None)
    if end is None:
        return None
    start = f"{guest}: KVM domain started"
    opened = next((when for when, op in started[at + 1 :] if _named(op, start)), None)
    command = next(
        (
            when
            for when, line in timed
            if opened is not None
            and opened <= when <= end
            and ">>> " in line
            and " start --domain " in line
        ),
        None,
    )
    return (end if command is None else command) - begun


def window_operations(lines: Iterable[tuple[float, str]], guest: str) -> list[tuple[str, float]]:
    """From a cutover run's output: each operation from the guest's downtime mark to the
    watch on its answer, with the seconds until the next one started (pyinfra runs one
    operation at a time on all its hosts: a barrier's or another host's operation counts
    where it ran). Empty when the output does not show both."""
    started = list(_operations(lines))
    mark = f"{guest}: downtime starts"
    at = next((i for i, (_, op) in enumerate(started) if op.startswith(mark)), None)
    watch = f"{guest}: started; its answer watched"
    end = next(
        (
            i
            for i, (_, op) in enumerate(started)
            if at is not None and i > at and op.startswith(watch)
        ),
        None,
    )
    if at is None or end is None:
        return []
    return [(op, started[i + 1][0] - when) for i, (when, op) in enumerate(started[at:end], at)]


def _named(op: str, name: str) -> bool:
    """Whether a started operation is ``name`` (pyinfra joins the names that one line of
    the deploy gave on several hosts with ``, ``)."""
    return op == name or op.startswith((f"{name}, ", f"{name} ("))


def _operations(lines: Iterable[tuple[float, str]]) -> Iterable[tuple[float, str]]:
    """Each ``--> Starting operation: NAME`` line: its time and the operation's name,
    without the ``tasks/cutover.py | `` that pyinfra puts before the names of the
    operations a deploy file's included file gave."""
    for when, line in lines:
        text = ANSI.sub("", line).strip()
        if STARTING in text:
            name = text.split(STARTING, 1)[1].strip()
            yield when, DEPLOY_FILE.sub("", name)


# --- the lab --------------------------------------------------------------------------


def ssh(host: str, command: str, stdin: str | None = None, timeout: float = 900):
    """``ssh HOST COMMAND`` through the ssh_config the lab writes (lab key, strict host
    keys); this runs inside the lab's network namespace (``xen2kvm lab exec``)."""
    config = Path(os.environ["XEN2KVM_LAB_DIR"]) / "ssh_config"
    return subprocess.run(
        ["ssh", "-F", str(config), "-o", "ConnectTimeout=10", host, command],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def must(host: str, command: str, stdin: str | None = None, what: str = "") -> str:
    result = ssh(host, command, stdin)
    if result.returncode != 0:
        sys.exit(
            f"{host}: {what or command} failed (rc {result.returncode}):\n"
            f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    return result.stdout


def tagged(output: str, tag: str) -> list[dict[str, str]]:
    """``key=value`` pairs of each output line that starts with ``tag``, in order."""
    return [
        dict(item.split("=", 1) for item in line.split()[1:])
        for line in output.splitlines()
        if line.startswith(tag + " ")
    ]


def fields(output: str, tag: str) -> dict[str, str]:
    """``key=value`` pairs of the first output line that starts with ``tag``."""
    found = tagged(output, tag)
    if not found:
        sys.exit(f"no '{tag}' line in:\n{output[-2000:]}")
    return found[0]


def deploy(
    group: str,
    phase: str,
    inventory: str = INVENTORY,
    log: Path | None = None,
    verbose: bool = False,
) -> tuple[float, list[tuple[float, str]]]:
    """The deploy over one guest's move, one phase: its seconds and its output, each line
    with the time it was read. ``verbose``: each fact and command in the output
    (``-vvv``); ``log``: verbose, and the output kept there, each line after its second
    from the start."""
    command = [
        sys.executable,
        "-m",
        "pyinfra",
        "-y",
        *(["-vvv"] if verbose or log else []),
        inventory,
        "deploy.py",
        "--limit",
        group,
        "--data",
        f"phase={phase}",
    ]
    print(f"--> {' '.join(command[2:])}", flush=True)
    started = time.time()
    lines: list[tuple[float, str]] = []
    with subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    ) as run:
        assert run.stdout is not None
        for line in run.stdout:
            lines.append((time.time(), line.rstrip("\n")))
    seconds = time.time() - started
    if log:
        log.write_text("".join(f"{when - started:8.2f} {line}\n" for when, line in lines))
        print(f"    its output: {log}", flush=True)
    if run.returncode != 0:
        tail = "\n".join(line for _, line in lines[-80:])
        sys.exit(f"the {phase} phase of {group} failed (rc {run.returncode}):\n{tail}")
    print(f"    {phase}: {seconds:.1f} s", flush=True)
    return seconds, lines


CHURN = r"""
set -eu
percent=$1 mib=$2 dir=$3
list=$(mktemp)
total=$(find / \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \) \
    -prune -o -type f -print 2>/dev/null | wc -l)
want=$((total * percent / 100))
{ find /usr/share/doc /usr/share/man /usr/share/locale -type f 2>/dev/null
  find /var/lib/dpkg/info -type f \( -name '*.preinst' -o -name '*.postinst' \
      -o -name '*.prerm' -o -name '*.postrm' \) 2>/dev/null; } > "$list"
# Appended to first (a comment line: harmless in text, .mo and maintainer scripts); a
# compressed page only gets a new time (trailing bytes would be garbage to zcat).
{ grep -v '\.gz$' "$list" | shuf -n "$want"; grep '\.gz$' "$list" | shuf -n "$want"; } \
    | head -n "$want" > "$list.pick"
appended=0 touched=0
while IFS= read -r f; do
    case $f in
        *.gz) touch -- "$f"; touched=$((touched + 1)) ;;
        *) printf '\n# x2k-bench churn\n' >> "$f"; appended=$((appended + 1)) ;;
    esac
done < "$list.pick"
rm -f "$list" "$list.pick"
rm -rf "$dir"
mkdir -p "$dir"
left=$mib n=0
while [ "$left" -gt 0 ]; do
    size=10
    [ "$left" -lt 10 ] && size=$left
    n=$((n + 1))
    head -c $((size * 1048576)) /dev/urandom > "$dir/new-$n.bin"
    left=$((left - size))
done
sync
echo "x2k-churn files=$total wanted=$want appended=$appended touched=$touched new_files=$n" \
    "new_bytes=$(du -sb "$dir" | cut -f1)"
"""

# In the running guest, until it stops (a server writes up to its shutdown): one new file
# of KIB KiB a second in DIR, and a line appended to DIR/log. Its own session, its output
# nowhere: the SSH command that starts it returns at once.
WRITER = r"""
set -eu
kib=$1 dir=$2
mkdir -p "$dir"
nohup setsid sh -c '
    kib=$1 dir=$2 n=0
    while :; do
        n=$((n + 1))
        head -c $((kib * 1024)) /dev/urandom > "$dir/w-$n.bin"
        date +%s.%N >> "$dir/log"
        sleep 1
    done' x2k-writer "$kib" "$dir" > /dev/null 2>&1 < /dev/null &
echo "x2k-writer pid=$!"
"""
WRITER_DIR = f"{CHURN_DIR}/live"

# On the KVM host: the new data pulled as presync pulls (its key, its known_hosts), timed.
FLOOR_COPY = r"""
set -u
key=$1 known=$2 source=$3
scratch=$(mktemp -d /var/tmp/x2k-bench-floor.XXXXXX)
t0=$(date +%s.%N)
rsync -a --numeric-ids -e "ssh -i $key -o BatchMode=yes -o StrictHostKeyChecking=yes \
-o UserKnownHostsFile=$known" "$source" "$scratch/data/" 2>"$scratch/err"
rc=$?
t1=$(date +%s.%N)
bytes=$(du -sb "$scratch/data" 2>/dev/null | cut -f1)
tail -n 5 "$scratch/err" >&2
rm -rf "$scratch"
echo "x2k-floor rc=$rc start=$t0 end=$t1 bytes=${bytes:-0}"
"""

# On the KVM host: the domain stopped (cleanly, else destroyed after 60 s), then started
# and timed until its SSH port answers from here (as net.wait_for_port probes it).
FLOOR_BOOT = r"""
set -u
uri=$1 domain=$2 address=$3 port=$4 timeout=$5
state() { virsh -c "$uri" domstate "$domain" 2>/dev/null | head -n 1; }
stop=shutdown
virsh -c "$uri" shutdown "$domain" >/dev/null
until=$(($(date +%s) + 60))
while [ "$(state)" != "shut off" ]; do
    if [ "$(date +%s)" -ge "$until" ]; then
        stop=destroy; virsh -c "$uri" destroy "$domain" >/dev/null; break
    fi
    sleep 0.5
done
# Each probe gives up after 1 s: a connect to an address nobody answers ARP for blocks for
# seconds, which would round the boot up.
probe() { timeout 1 bash -c 'exec 3<>"/dev/tcp/$1/$2"' x2k-probe "$address" "$port" 2>/dev/null; }
while probe; do sleep 0.2; done
t0=$(date +%s.%N)
virsh -c "$uri" start "$domain" >/dev/null || { echo "x2k-boot rc=1 stop=$stop"; exit 1; }
deadline=$(($(date +%s) + timeout))
until probe; do
    [ "$(date +%s)" -ge "$deadline" ] && { echo "x2k-boot rc=2 stop=$stop"; exit 1; }
    sleep 0.2
done
t1=$(date +%s.%N)
echo "x2k-boot rc=0 stop=$stop start=$t0 end=$t1"
"""


def floor_copy(kvm: str, state_dir: str, guest: str, address: str) -> tuple[float, str]:
    """(a): the churn's new data pulled to the KVM host as presync pulls, timed there; the
    seconds and how it was read. The lab's own key (sent to the KVM host for the copy and
    removed after) when the migration key cannot read it: a plain remote shell, so the
    same directory named without the migration key's rsync module."""
    key, known = f"{state_dir}/ssh/id_ed25519", f"{state_dir}/ssh/known_hosts.{guest}"
    source = module_source("root", address, CHURN_DIR)
    how = f"the migration key {key} and {known}, as presync's copies"
    result = ssh(kvm, f"bash -s -- {shlex.join([key, known, source])}", FLOOR_COPY)
    found = fields(f"{result.stdout}\n{result.stderr}", "x2k-floor")
    if found["rc"] != "0":
        print(
            f"    the migration key did not read {source} (rsync rc {found['rc']}: "
            f"{result.stderr.strip()[-300:]}): again with the lab's own key",
            flush=True,
        )
        lab = LabConfig.from_env()
        spare = "/var/tmp/x2k-bench-lab-key"  # noqa: S108 (on the lab's KVM host)
        must(
            kvm,
            f"rm -rf {spare} && mkdir -m 0700 {spare} && cat > {spare}/id_ed25519 && "
            f"chmod 0600 {spare}/id_ed25519",
            lab.ssh_key.read_text(),
            "sending the lab key",
        )
        must(kvm, f"cat > {spare}/known_hosts", lab.known_hosts.read_text(), "known_hosts")
        source = f"root@{address}:{CHURN_DIR}/"
        args = [f"{spare}/id_ed25519", f"{spare}/known_hosts", source]
        try:
            result = ssh(kvm, f"bash -s -- {shlex.join(args)}", FLOOR_COPY)
        finally:
            must(kvm, f"rm -rf {spare}", what="removing the lab key")
        found = fields(f"{result.stdout}\n{result.stderr}", "x2k-floor")
        if found["rc"] != "0":
            sys.exit(
                f"{kvm}: rsync from {source} failed with the lab's key too "
                f"(rc {found['rc']}): {result.stderr.strip()[-1000:]}"
            )
        how = "the lab's own key from the KVM host's side (the migration key could not read it)"
    seconds = float(found["end"]) - float(found["start"])
    print(
        f"    floor (a): {int(found['bytes']) / 1024 / 1024:.1f} MiB in {seconds:.1f} s, {how}",
        flush=True,
    )
    return seconds, how


def hand_boot(kvm: KvmHost, guest: Guest) -> float:
    """``floor_boot`` of a lab guest on its KVM host, as the inventory names them."""
    return floor_boot(
        kvm.name,
        kvm.libvirt_uri,
        guest.domain_name,
        guest.address,
        guest.ssh.port,
        guest.boot_timeout or 600,
    )


def floor_boot(kvm: str, uri: str, domain: str, address: str, port: int, timeout: int) -> float:
    """(b): the KVM domain stopped, then started by hand and timed to SSH on the KVM host."""
    args = shlex.join([uri, domain, address, str(port), str(timeout)])
    result = ssh(kvm, f"bash -s -- {args}", FLOOR_BOOT, timeout=timeout + 300)
    found = fields(f"{result.stdout}\n{result.stderr}", "x2k-boot")
    if found["rc"] != "0":
        sys.exit(
            f"{kvm}: the hand start of {domain} failed (rc {found['rc']}, "
            f"stopped by {found['stop']}): {result.stderr.strip()[-1000:]}"
        )
    seconds = float(found["end"]) - float(found["start"])
    print(
        f"    floor (b): {domain} stopped ({found['stop']}), started and answering SSH "
        f"in {seconds:.1f} s",
        flush=True,
    )
    return seconds


def churn(guest: str, mib: int) -> None:
    """In the running guest: about CHURN_PERCENT % of its files changed, MIB MiB new."""
    args = shlex.join([str(CHURN_PERCENT), str(mib), CHURN_DIR])
    found = fields(must(guest, f"sh -s -- {args}", CHURN, "the churn"), "x2k-churn")
    print(
        f"    churn: {found['appended']} files appended to, {found['touched']} touched "
        f"({found['wanted']} wanted, {CHURN_PERCENT} % of {found['files']}); "
        f"{int(found['new_bytes']) / 1024 / 1024:.1f} MiB new in {found['new_files']} files "
        f"in {CHURN_DIR}",
        flush=True,
    )


def writer(guest: str, kib_s: int) -> None:
    """In the running guest, until it stops: about KIB_S KiB of new data a second (the
    catch-up before the stop moves the rest; the window's final copy, what came after)."""
    args = shlex.join([str(kib_s), WRITER_DIR])
    found = fields(must(guest, f"sh -s -- {args}", WRITER, "the writer"), "x2k-writer")
    print(
        f"    writer: {kib_s} KiB a second into {WRITER_DIR} until the guest stops "
        f"(pid {found['pid']})",
        flush=True,
    )


def projected_line(lines: list[tuple[float, str]], guest: str) -> str | None:
    """The projection the cutover's gate printed (its operation's name), if any."""
    said = f"{guest}: projected downtime"
    for _, op in _operations(lines):
        if op.startswith(said):
            return op
    return None


def fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def fresh_guest(script: str, doc: str, data_mib: int | None = None, boots: bool = False):
    """The command line of a bench that migrates one lab guest (``--guest``,
    ``--churn-mib``, ``--write-kib-s``, ``--log``; ``--data-mib`` with its default when
    ``data_mib`` is given, ``--boots`` with ``boots``), checked: run inside the lab, a guest
    that moves to KVM and whose cutover has not begun. Returns the arguments, the fleet,
    the guest, its KVM host and its group."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--guest", default="web1", help="a lab guest that moves to KVM")
    parser.add_argument("--churn-mib", type=int, default=50, help="new data after presync")
    parser.add_argument(
        "--write-kib-s",
        type=int,
        default=WRITE_KIB_S,
        help="new data a second, written from the churn until the guest stops (0: none)",
    )
    parser.add_argument(
        "--log",
        type=Path,
        help="where to keep the cutover run's output, verbose (-vvv: each fact and command), "
        "each line with its second from the run's start",
    )
    if boots:
        parser.add_argument(
            "--boots",
            type=int,
            default=BOOTS,
            help="hand starts timed for the floor's boot (its median)",
        )
    if data_mib is not None:
        parser.add_argument(
            "--data-mib", type=int, default=data_mib, help="data the guest holds before presync"
        )
    args = parser.parse_args()
    if data_mib is not None and args.data_mib < 0:
        sys.exit("--data-mib must be 0 or more")
    if "XEN2KVM_LAB_DIR" not in os.environ:
        sys.exit(f"run it inside the lab: xen2kvm lab exec -- python bench/{script}")
    if args.churn_mib < 1:
        sys.exit("--churn-mib must be 1 or more")
    if args.write_kib_s < 0:
        sys.exit("--write-kib-s must be 0 or more")
    if boots and args.boots < 1:
        sys.exit("--boots must be 1 or more")
    fleet = load_fleet(ROOT / "inventory" / "lab.yml")
    guest = fleet.guests.get(args.guest)
    if guest is None or guest.kvm_host is None:
        movers = ", ".join(g.name for g in fleet.guests.values() if g.kvm_host)
        sys.exit(f"{args.guest}: not a lab guest that moves to KVM ({movers})")
    kvm = fleet.kvm_hosts[guest.kvm_host]
    if any(r.get("step") == DOWNTIME_START for r in current(journal(ssh, guest.name, kvm.name))):
        sys.exit(
            f"{guest.name}: its cutover has begun already ({JOURNALS}/{guest.name}.jsonl "
            f"on {kvm.name}): xen2kvm lab down && xen2kvm lab up, then run this again"
        )
    return args, fleet, guest, kvm, move_group(guest.name)


def main() -> int:
    args, _fleet, guest, kvm, group = fresh_guest("downtime.py", __doc__, boots=True)

    print(f"1. {guest.name} to the eve of its cutover ({group})", flush=True)
    for phase in ("plan", "prepare", "presync"):
        deploy(group, phase)

    print(f"2. churn in the running {guest.name}", flush=True)
    churn(guest.name, args.churn_mib)
    if args.write_kib_s:
        writer(guest.name, args.write_kib_s)

    print(f"3a. floor: the new data alone, {guest.name} to {kvm.name}", flush=True)
    copy_floor, copy_how = floor_copy(
        kvm.name, kvm.state_dir, guest.name, guest.migration_address or guest.address
    )

    print(f"4. the cutover of {guest.name}", flush=True)
    cutover_seconds, lines = deploy(group, "cutover", log=args.log, verbose=True)
    records = journal(ssh, guest.name, kvm.name)
    setup = setup_seconds(lines, guest.name, guest.xen_host)
    try:
        found = breakdown(records, setup, start_seconds(lines, guest.name))
    except NoCutover as exc:
        sys.exit(f"{guest.name}: {exc} ({JOURNALS}/{guest.name}.jsonl on {kvm.name})")

    print(
        f"3b. floor: {guest.domain_name} started by hand on {kvm.name}, {args.boots} times",
        flush=True,
    )
    boots = [hand_boot(kvm, guest) for _ in range(args.boots)]
    boot_floor = statistics.median(boots)
    if len(boots) > 1:
        print(
            f"    floor (b): the median, {boot_floor:.1f} s (from {min(boots):.1f} to "
            f"{max(boots):.1f} s)",
            flush=True,
        )

    stop = max(i for i, r in enumerate(records) if r.get("step") == DOWNTIME_START)
    last = at_gate(records, stop)
    peers = Peers.of(
        journals(ssh, kvm.name), besides=guest.name, before=float(records[last]["time"])
    )
    projection = project(records[:last], guest.boot_time, guest.integrity_check, peers)
    floor = copy_floor + boot_floor + found.shutdown
    share, share_hand = found.tool_share(), found.tool_share(boot_floor)

    print(
        f"\n{guest.name}: downtime by step (journal on {kvm.name}, cutover run "
        f"{cutover_seconds:.1f} s)"
    )
    for row in found.rows():
        print(f"  {row.name:<24} {row.seconds:8.1f} s  {row.note}")
    print(f"  {'downtime':<24} {found.downtime:8.1f} s  {DOWNTIME_START} to answering")
    if setup is None:
        print("  (set-up not found in the run's output: the shutdown includes it)")
    print(
        f"floor: {copy_floor:.1f} s copy (a, {copy_how}) + {boot_floor:.1f} s boot (b, by "
        f"hand) + {found.shutdown:.1f} s shutdown (this run) = {floor:.1f} s"
    )
    print(
        f"tool share: ({found.downtime:.1f} downtime - {found.shutdown:.1f} shutdown - "
        f"{found.final_rsync:.1f} final rsync - {found.boot:.1f} boot, from the start "
        f"command) / {found.downtime:.1f} = {share:.2f}; with the boot by hand "
        f"({boot_floor:.1f} s) instead: {share_hand:.2f}"
    )
    profile = window_operations(lines, guest.name)
    if profile:
        total = sum(seconds for _, seconds in profile)
        print(f"the window's operations, to the watch (the run's output: {total:.1f} s):")
        for name, seconds in profile:
            print(f"  {seconds:6.1f} s  {name}")
    said = projected_line(lines, guest.name)
    print(f"projected (the cutover's gate said): {said or 'not found in its output'}")
    print(
        f"projected (xen2kvm.downtime.project over the journal before the cutover): "
        f"{projection.describe() if projection else 'none'}"
    )
    print(f"actual: {found.downtime:.1f} s")
    print(
        f"bench downtime: guest={guest.name} downtime_s={found.downtime:.1f} "
        f"floor_s={floor:.1f} ratio={found.downtime / floor:.1f} tool_share={share:.2f} "
        f"tool_share_hand={share_hand:.2f} "
        f"projected_s={fmt(projection.total if projection else None)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
