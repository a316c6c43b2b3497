"""Benchmark: one guest migrated cold (stopped first, then the full copy, as virt-v2v
works) against our warm path, on the lab: the data copy inside the window, and the whole
downtime.

    xen2kvm lab exec -- python bench/warm_cold.py [--guest web1] [--churn-mib 50]
        [--data-mib 768] [--write-kib-s 256]

Needs a lab where the guest is not migrated yet (a fresh ``xen2kvm lab up``); it migrates
it. Before its presync (after prepare, which installs a kernel in it) the guest is given
data: up to DATA_MIB MiB in each of /srv/x2k-data and /var/lib/x2k-data (random, so
incompressible, in 16 MiB files, as a server keeps its sites and databases), as much as
each one's filesystem holds beside the churn and 64 MiB (web1: 768 MiB on /, about 370
on /var); none with ``--data-mib 0``. A lab guest as built is a bare system of about 220
MiB, of which a 50 MiB churn is over a fifth, where a server's last minutes before its
cutover change a few percent of it. While both
copies are bound by the bytes they move, the copy ratio cannot pass the full copy's bytes
over the final copies' (printed as ``byte_ratio``): for the bare web1 and 50 MiB, about 8.

The warm path is bench/downtime.py's: the deploy's plan, prepare and presync phases for
``move_<guest>``, the churn (about 2 % of the guest's files changed, CHURN_MIB MiB of new
data) and from then on a writer in the guest until it stops (WRITE_KIB_S KiB a second),
then the cutover, timed, and its journal broken down by step. The cutover's catch-up pass
moves the churn while the guest still runs: the copies inside the window move what the
writer wrote in the seconds before the stop.

The cold path's copy is measured in the same run between the same hosts, from what a cold
migration copies: right after the warm cutover the guest runs on KVM, and its Xen LVs are
as it left them, stopped and unused. The bench stops the KVM domain (as in a cold window,
nothing of the guest runs during the copy), mounts the Xen LVs read-only on the dom0
(below a directory of its own, ``ro,nodev,nosuid,noexec`` as the cutover mounts them),
lets the KVM host's migration key read them as the cutover does (the same authorized_keys
line, from the KVM host's address only, and the same read-only rsync module, its root the
bench's directory) and, on the KVM host, pulls every filesystem with the tool's own copy
(``operations.sync.RSYNC``, the same excludes, the migration key and the dom0's
known_hosts the cutover used) into an empty scratch filesystem (an ext4 LV in the KVM
host's VG as large as the guest's filesystems, made for the purpose): the full copy,
timed there per filesystem. Then all of it is undone, and the KVM domain started again,
timed to SSH as bench/downtime.py's floor (b) does.

The cold downtime is computed, not run end to end: the warm run's downtime with its final
copies replaced by the full copy. It assumes a cold migration's shutdown, set-up (mounts,
keys), integrity check (a ``--checksum`` comparison reads every file on both sides, however
the copy was made), fix-ups and start and boot take what the warm run's took. The full
copy reads LVs the cutover's integrity check has just read in full: what the machine
still caches of them makes it faster than a copy from cold disks (caches are not dropped:
the lab's dom0 shares the machine's kernel).

Prints both breakdowns and ends with one line ``bench warm_cold: guest=G data_mib=D
churn_mib=C write_kib_s=W copy_ratio=X byte_ratio=B downtime_ratio=Y``: the data written
(MiB, all directories), the churn, the writer's rate, the full copy's seconds over the
warm cutover's final copies' seconds (both inside the window), the same for their bytes,
and the cold downtime over the warm one. Not part of CI.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.downtime import (  # noqa: E402
    JOURNALS,
    Breakdown,
    NoCutover,
    Step,
    breakdown,
    churn,
    deploy,
    fresh_guest,
    hand_boot,
    must,
    setup_seconds,
    ssh,
    start_seconds,
    tagged,
    writer,
)
from operations.sync import MODULE, RSYNC, access_line, module_path, module_source  # noqa: E402
from tasks.destinations.kvm import Kvm  # noqa: E402
from tasks.steps import excluded  # noqa: E402
from tests.lab.runs import journal  # noqa: E402
from xen2kvm import paths, render  # noqa: E402
from xen2kvm.fstab import parse_fstab  # noqa: E402
from xen2kvm.inventory import Fleet, Guest  # noqa: E402
from xen2kvm.journal import DOWNTIME_START  # noqa: E402
from xen2kvm.planinputs import PlanInputs  # noqa: E402
from xen2kvm.planner import source_volumes  # noqa: E402
from xen2kvm.units import MIB  # noqa: E402
from xen2kvm.xenconfig import parse_xen_config  # noqa: E402

BENCH_DIR = "/var/lib/x2k-bench"  # on the dom0 and the KVM host, for the time of the copy
DOM0_BASE = f"{BENCH_DIR}/cold"  # on the dom0: the read-only mounts (the module's root)
SCRATCH_LV = "x2k-bench-cold"  # in the KVM host's VG
SCRATCH = f"{BENCH_DIR}/scratch"  # on the KVM host: where the scratch LV is mounted
MARGIN_MIB = 64  # the scratch filesystem's room beyond the guest's filesystems' sizes
TAG = "x2k-cold"
DATA_TAG = "x2k-data"  # FILL's lines
# In the guest: where its data goes (it moves with it), as a server keeps its sites and its
# databases (each on its own filesystem in the lab's guests).
DATA_DIRS = ("/srv/x2k-data", "/var/lib/x2k-data")
DATA_FILE_MIB = 16  # the size of each data file
ROOM_MIB = 64  # what the guest's filesystem keeps free beyond its data and the churn

# --- the pure part: what the cold copy reads, its output, the two downtimes ---------


@dataclass(frozen=True)
class Filesystem:
    """One filesystem of the guest, as its dom0 holds it (from its frozen plan inputs)."""

    mountpoint: str
    device: str  # the LV on the dom0
    size: int  # the LV's bytes


def filesystems(inputs: str, guest: str, where: str = "<plan inputs>") -> list[Filesystem]:
    """The guest's filesystems (not swap), parents first, from the plan inputs its first
    presync froze on the KVM host (``paths.plan_inputs``), read as the deploy reads them."""
    frozen = PlanInputs.from_json(inputs)
    domain = parse_xen_config(frozen.xen_config, where)
    volumes = source_volumes(
        guest, domain, parse_fstab(frozen.fstab), frozen.sizes, frozen.filesystems
    )
    found = [
        Filesystem(v.mountpoint, v.device, v.size) for v in volumes if v.mountpoint is not None
    ]
    return sorted(found, key=lambda f: parents_first(f.mountpoint))


def parents_first(mountpoint: str) -> tuple[bool, int, str]:
    """Sort key for mount points: ``/`` first, then each parent before its children (as
    the deploy mounts them: ``tasks.move.parents_first``)."""
    return (mountpoint != "/", mountpoint.count("/"), mountpoint)


def xen_domain(inputs: str) -> str | None:
    """The Xen domain's name its frozen config gives (what ``xl list`` shows)."""
    return parse_xen_config(PlanInputs.from_json(inputs).xen_config).name


def excludes(mountpoint: str) -> list[str]:
    """What the tool's copy of that filesystem leaves out (``tasks.steps.excludes`` for a
    KVM host): the files the tool writes itself or leaves out and the runtime trees, on
    ``/``."""
    return excluded(Kvm, mountpoint)


def scratch_mib(found: Sequence[Filesystem]) -> int:
    """The scratch filesystem's size: the guest's filesystems' together, and a margin."""
    return -(-sum(f.size for f in found) // MIB) + MARGIN_MIB


class ColdCopyFailed(RuntimeError):
    """A filesystem's copy failed, or the output lacks one."""


def cold_copies(output: str, mountpoints: Sequence[str]) -> list[Step]:
    """The full copy, one step per filesystem, from the KVM host's output (``x2k-cold
    step=/var rc=0 start=T0 end=T1 bytes=B`` lines, in the order of ``mountpoints``)."""
    found = {pairs["step"]: pairs for pairs in tagged(output, TAG)}
    steps = []
    for mountpoint in mountpoints:
        copy = found.get(mountpoint)
        if copy is None:
            raise ColdCopyFailed(f"no copy of {mountpoint} in the output")
        if copy["rc"] != "0":
            raise ColdCopyFailed(f"the copy of {mountpoint} failed (rsync rc {copy['rc']})")
        moved = int(copy["bytes"]) / MIB
        seconds = float(copy["end"]) - float(copy["start"])
        note = f"{moved:.1f} MiB moved"
        steps.append(Step(f"full copy {mountpoint}", seconds, note, int(copy["bytes"])))
    return steps


@dataclass(frozen=True)
class Cold:
    """The cold path: the full copy measured, the rest of the window as the warm run's."""

    warm: Breakdown
    copies: tuple[Step, ...]

    @property
    def copy(self) -> float:
        return sum(step.seconds for step in self.copies)

    @property
    def downtime(self) -> float:
        """The warm downtime with its final copies replaced by the full copy."""
        return self.warm.downtime - self.warm.final_rsync + self.copy

    def rows(self) -> list[Step]:
        """Its downtime by step: they add up to ``downtime``."""
        same = "as the warm run (assumed)"
        warm = self.warm
        return [
            Step("shutdown", warm.shutdown, same),
            Step("set-up", warm.setup, same),
            *self.copies,
            *(Step(s.name, s.seconds, f"{same}: the same comparison") for s in warm.checks),
            Step("between steps", warm.between, same),
            Step("fix-ups", warm.fixups, same),
            Step("start", warm.start, same),
            Step("boot", warm.boot, same),
        ]

    @property
    def copy_ratio(self) -> float | None:
        """The full copy over the warm final copies (inside the window both)."""
        return self.copy / self.warm.final_rsync if self.warm.final_rsync > 0 else None

    @property
    def moved(self) -> tuple[int, int]:
        """The bytes the full copy and the warm final copies moved (those they said)."""
        return tuple(sum(s.moved or 0 for s in steps) for steps in (self.copies, self.warm.copies))

    @property
    def byte_ratio(self) -> float | None:
        """The full copy's bytes over the warm final copies' (None when a copy did not say
        its bytes): what the copy ratio would be were both bound by the bytes alone."""
        said = all(s.moved is not None for s in (*self.copies, *self.warm.copies))
        cold, warm = self.moved
        return cold / warm if said and warm else None

    @property
    def downtime_ratio(self) -> float | None:
        return self.downtime / self.warm.downtime if self.warm.downtime > 0 else None


def ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def summary_line(
    guest: str, cold: Cold, data_mib: int, churn_mib: int, write_kib_s: int = 0
) -> str:
    return (
        f"bench warm_cold: guest={guest} data_mib={data_mib} churn_mib={churn_mib} "
        f"write_kib_s={write_kib_s} "
        f"copy_ratio={ratio(cold.copy_ratio)} byte_ratio={ratio(cold.byte_ratio)} "
        f"downtime_ratio={ratio(cold.downtime_ratio)}"
    )


def report(
    guest: str,
    cold: Cold,
    setup_found: bool,
    boot: float | None = None,
    data_mib: int = 0,
    churn_mib: int = 0,
    write_kib_s: int = 0,
) -> list[str]:
    """Both breakdowns, what the cold one assumes, and the summary line last. ``boot``:
    the KVM start and boot timed by hand after the cold copy, shown beside the warm run's;
    ``data_mib``, ``churn_mib`` and ``write_kib_s``, what the bench wrote into the
    guest."""
    warm = cold.warm
    lines = [f"{guest}, warm (this run's cutover, from its journal):"]
    lines += [f"  {s.name:<24} {s.seconds:8.1f} s  {s.note}" for s in warm.rows()]
    lines.append(f"  {'downtime':<24} {warm.downtime:8.1f} s  {DOWNTIME_START} to answering")
    if not setup_found:
        lines.append("  (set-up not found in the run's output: the shutdown includes it)")
    lines.append(f"{guest}, cold (the full copy measured, the rest as the warm run's):")
    lines += [f"  {s.name:<24} {s.seconds:8.1f} s  {s.note}" for s in cold.rows()]
    lines.append(f"  {'downtime':<24} {cold.downtime:8.1f} s  computed")
    checks = sum(s.seconds for s in warm.checks)
    lines.append(
        "assumed: a cold migration's shutdown, set-up, integrity check, fix-ups and start and "
        "boot take what the warm run's took; without the integrity check (virt-v2v does "
        f"none) the cold downtime would be {cold.downtime - checks:.1f} s"
    )
    if boot is not None:
        lines.append(
            f"start and boot after the cold copy, by hand: {boot:.1f} s (the warm run's: "
            f"start {warm.start:.1f} s and boot {warm.boot:.1f} s, which the cold downtime "
            "uses)"
        )
    lines.append(
        f"copy inside the window: {cold.copy:.1f} s cold / {warm.final_rsync:.1f} s warm = "
        f"{ratio(cold.copy_ratio)}; downtime: {cold.downtime:.1f} s cold / "
        f"{warm.downtime:.1f} s warm = {ratio(cold.downtime_ratio)}"
    )
    full, final = (size / MIB for size in cold.moved)
    lines.append(
        f"bytes inside the window: {full:.1f} MiB cold / {final:.1f} MiB warm = "
        f"{ratio(cold.byte_ratio)} (the bench wrote {data_mib} MiB of data into {guest} "
        f"before presync, churned {churn_mib} MiB after it, and wrote {write_kib_s} KiB a "
        "second from then until its stop)"
    )
    lines.append(summary_line(guest, cold, data_mib, churn_mib, write_kib_s))
    return lines


# --- the lab --------------------------------------------------------------------------

# On the KVM host: the domain stopped (cleanly, else destroyed after 60 s), as in
# bench/downtime.py's FLOOR_BOOT.
KVM_STOP = r"""
set -u
uri=$1 domain=$2
state() { virsh -c "$uri" domstate "$domain" 2>/dev/null | head -n 1; }
virsh -c "$uri" shutdown "$domain" >/dev/null
until=$(($(date +%s) + 60))
while [ "$(state)" != "shut off" ]; do
    if [ "$(date +%s)" -ge "$until" ]; then
        virsh -c "$uri" destroy "$domain" >/dev/null; break
    fi
    sleep 0.5
done
[ "$(state)" = "shut off" ]
"""

# On the dom0: the stopped guest's LVs mounted read-only, parents first (each
# argument pair: a device and its mount point); refused while its Xen domain runs.
DOM0_MOUNT = r"""
set -eu
domain=$1; shift
if xl list | awk 'NR>1 {print $1}' | grep -qxF -- "$domain"; then
    echo "the Xen domain $domain runs: its LVs are not mounted" >&2; exit 3
fi
while [ $# -gt 0 ]; do
    [ -d "$2" ] || mkdir -p "$2"
    mount -o ro,nodev,nosuid,noexec "$1" "$2"
    shift 2
done
"""

# On the dom0: each mount point unmounted, children first, then the directories removed
# (rmdir: never anything with files in it).
DOM0_UNMOUNT = r"""
rc=0
for path in "$@"; do
    if findmnt -n "$path" >/dev/null; then umount "$path" || rc=1; fi
done
for path in "$@"; do rmdir "$path" 2>/dev/null || true; done
exit $rc
"""

# On the dom0: the module file written and a line added to authorized_keys; then that
# line (exactly) taken out, and the module file removed.
KEY_IN = r"""
set -eu
line=$1 keys=$2 module=$3 text=$4
mkdir -p -m 0700 "$(dirname "$module")"
printf '%s' "$text" > "$module"
mkdir -p -m 0700 "$(dirname "$keys")"
printf '%s\n' "$line" >> "$keys"
chmod 0600 "$keys"
"""
KEY_OUT = r"""
set -eu
line=$1 keys=$2 module=$3
grep -vxF -e "$line" "$keys" > "$keys.x2k-bench" || true
cat "$keys.x2k-bench" > "$keys"
rm -f "$keys.x2k-bench" "$module"
"""
AUTHORIZED_KEYS = "/root/.ssh/authorized_keys"  # on the dom0, as sync.access edits it

# On the KVM host: an empty ext4 LV mounted as the scratch directory, as the tool mounts
# a new tree; and its removal.
SCRATCH_UP = r"""
set -eu
vg=$1 name=$2 mib=$3 into=$4
free=$(vgs --noheadings --units m --nosuffix -o vg_free "$vg" | tr -d ' ' | cut -d. -f1)
if [ "$free" -lt "$mib" ]; then
    echo "$vg has ${free} MiB free, the scratch copy needs ${mib} MiB" >&2; exit 3
fi
lvcreate -q -y -n "$name" -L "${mib}m" "$vg" >/dev/null
mkfs.ext4 -q -F "/dev/$vg/$name"
mkdir -p "$into"
mount -o nodev,nosuid,noexec "/dev/$vg/$name" "$into"
"""
SCRATCH_DOWN = r"""
rc=0
vg=$1 name=$2 into=$3
if findmnt -n "$into" >/dev/null; then umount "$into" || rc=1; fi
rmdir "$into" "$(dirname "$into")" 2>/dev/null || true
if lvs "$vg/$name" >/dev/null 2>&1; then lvremove -q -y "$vg/$name" >/dev/null || rc=1; fi
exit $rc
"""

# On the KVM host: each copy timed, one line each (bytes: rsync --stats, as x2k-journal
# reads them). The copies themselves are appended below this, one ``timed`` line each.
COLD_COPY = rf"""
set -u
out=$(mktemp /var/tmp/x2k-bench-cold-out.XXXXXX)
timed() {{
    step=$1; shift
    t0=$(date +%s.%N)
    "$@" > "$out" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    bytes=$(sed -n 's/^Total bytes received: \([0-9,.]*\).*/\1/p' "$out" | tr -d ,. | tail -n 1)
    [ "$rc" -eq 0 ] || sed 's/^.*\r//' "$out" | tail -n 5 >&2
    echo "{TAG} step=$step rc=$rc start=$t0 end=$t1 bytes=${{bytes:-0}}"
}}
"""


def copy_script(
    found: Sequence[Filesystem],
    guest: str,
    dialled: str,
    key: str,
    known: str,
    into: str = SCRATCH,
) -> str:
    """COLD_COPY with one ``timed`` rsync per filesystem, parents first: from the dom0's
    read-only mounts (through the migration key's rsync module, whose root is DOM0_BASE)
    into ``into``."""
    transport = shlex.join(
        ["ssh", "-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
         "-o", f"UserKnownHostsFile={known}"]
    )  # fmt: skip
    lines = [COLD_COPY]
    for fs in found:
        inside = "" if fs.mountpoint == "/" else fs.mountpoint
        command = [*shlex.split(RSYNC), "-e", transport]
        for exclude in excludes(fs.mountpoint):
            command += ["--exclude", exclude]
        command += [module_source("root", dialled, f"/{guest}{inside}"), f"{into}{inside}/"]
        lines.append(f"mkdir -p {shlex.quote(into + inside)}")
        lines.append(f"timed {shlex.quote(fs.mountpoint)} {shlex.join(command)}")
    lines.append('rm -f "$out"')
    return "\n".join(lines) + "\n"


# In the running guest: each data directory made again with up to MIB MiB in files of FILE
# MiB of random data, as much as its filesystem holds leaving ROOM MiB free; one line each.
FILL = r"""
set -eu
mib=$1 file=$2 room=$3
shift 3
for dir in "$@"; do
    rm -rf "$dir"
    mkdir -p "$dir"
    stats=$(df -Pm "$dir" | awk 'NR == 2 { print $4, $6 }')  # free MiB, mount point
    free=${stats%% *} on=${stats#* }
    fits=$((free - room))
    [ "$fits" -gt "$mib" ] && fits=$mib
    [ "$fits" -gt 0 ] || fits=0
    left=$fits n=0
    while [ "$left" -gt 0 ]; do
        size=$file
        [ "$left" -lt "$file" ] && size=$left
        n=$((n + 1))
        head -c $((size * 1048576)) /dev/urandom > "$dir/part-$n.bin"
        left=$((left - size))
    done
    sync
    echo "x2k-data dir=$dir files=$n bytes=$(du -sb "$dir" | cut -f1) free_mib=$free on=$on"
done
"""


def fill(guest: str, mib: int, churn_mib: int) -> int:
    """In the running guest: up to ``mib`` MiB of data in each of DATA_DIRS, as much as each
    one's filesystem holds beside the churn and a margin; returns the bytes written."""
    args = [str(mib), str(DATA_FILE_MIB), str(churn_mib + ROOM_MIB), *DATA_DIRS]
    found = tagged(must(guest, f"sh -s -- {shlex.join(args)}", FILL, "the data"), DATA_TAG)
    for each in found:
        print(
            f"    data: {int(each['bytes']) / MIB:.1f} MiB in {each['files']} files in "
            f"{each['dir']} (on {each['on']}, {each['free_mib']} MiB were free)",
            flush=True,
        )
    return sum(int(each["bytes"]) for each in found)


def run(host: str, script: str, args: Sequence[str], what: str) -> str:
    """``script`` run by bash on ``host`` with ``args``; the bench stops when it fails."""
    return must(host, f"bash -s -- {shlex.join(args)}", script, what)


def undo(host: str, script: str, args: Sequence[str], what: str) -> None:
    """As ``run``, to undo what the bench set up: a failure is said, loudly, not fatal."""
    result = ssh(host, f"bash -s -- {shlex.join(args)}", script)
    if result.returncode != 0:
        print(f"    {host}: {what} NOT undone: {result.stderr.strip()[-500:]}", flush=True)


def cold_copy(fleet: Fleet, guest: Guest, domain: str, found: list[Filesystem]) -> list[Step]:
    """The full copy from the stopped guest's read-only LVs on its dom0 to a scratch
    filesystem on the KVM host, timed there, with the guest stopped on KVM meanwhile (as
    in a cold window nothing of it runs); all of it undone after, but the KVM start."""
    dom0, kvm = fleet.xen_hosts[guest.xen_host], fleet.kvm_hosts[str(guest.kvm_host)]
    dialled = dom0.migration_address or dom0.address
    # Where the KVM host's copies come from, as the dom0 sees them (Move.dom0_address).
    both = dom0.migration_address and kvm.migration_address
    coming = str(kvm.migration_address if both else kvm.address)
    key = paths.migration_key(kvm.state_dir)
    known = paths.known_hosts(kvm.state_dir, dom0.name)
    public = must(kvm.name, f"cat {shlex.quote(key)}.pub", what="reading the migration key")
    line = access_line(public, coming, DOM0_BASE)
    module = [module_path(DOM0_BASE), render.rsyncd_conf(MODULE, DOM0_BASE)]
    top = f"{DOM0_BASE}/{guest.name}"
    mounts = [(f.device, top + ("" if f.mountpoint == "/" else f.mountpoint)) for f in found]
    mib = scratch_mib(found)
    with ExitStack() as stack:
        stack.push(_restart(kvm.name, kvm.libvirt_uri, guest.domain_name))
        run(kvm.name, KVM_STOP, [kvm.libvirt_uri, guest.domain_name], "stopping it on KVM")
        print(f"    {kvm.name}: {guest.domain_name} stopped", flush=True)

        made = [path for _, path in reversed(mounts)] + [DOM0_BASE, BENCH_DIR]
        stack.callback(undo, dom0.name, DOM0_UNMOUNT, made, "the read-only mounts")
        pairs = [item for pair in mounts for item in pair]
        run(dom0.name, DOM0_MOUNT, [domain, *pairs], "the read-only mounts")
        keys = [line, AUTHORIZED_KEYS, module[0]]
        stack.callback(undo, dom0.name, KEY_OUT, keys, "the migration key's access")
        run(dom0.name, KEY_IN, [*keys, module[1]], "letting the migration key in")
        print(
            f"    {dom0.name}: {len(found)} filesystems read-only below {top}, readable by "
            f"{kvm.name}'s migration key (its read-only rsync module, from {coming})",
            flush=True,
        )

        stack.callback(undo, kvm.name, SCRATCH_DOWN, [kvm.vg, SCRATCH_LV, SCRATCH], "scratch")
        run(kvm.name, SCRATCH_UP, [kvm.vg, SCRATCH_LV, str(mib), SCRATCH], "the scratch LV")
        print(f"    {kvm.name}: an empty {mib} MiB ext4 LV {kvm.vg}/{SCRATCH_LV}", flush=True)

        script = copy_script(found, guest.name, dialled, key, known)
        result = ssh(kvm.name, "bash -s", script, timeout=7200)
        try:
            return cold_copies(result.stdout, [f.mountpoint for f in found])
        except ColdCopyFailed as exc:
            sys.exit(f"{kvm.name}: {exc}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


ExitCallback = Callable[
    [type[BaseException] | None, BaseException | None, TracebackType | None], bool
]


def _restart(kvm: str, uri: str, domain: str) -> ExitCallback:
    """An exit callback: when the bench stops early, the KVM domain started again (on the
    way out as it should be, ``hand_boot`` starts it and times its boot)."""

    def restart(
        kind: type[BaseException] | None, value: BaseException | None, trace: TracebackType | None
    ) -> bool:
        if kind is not None:
            started = ssh(kvm, f"virsh -c {shlex.quote(uri)} start {shlex.quote(domain)}")
            said = "started again" if started.returncode == 0 else "NOT started again"
            print(f"    {kvm}: {domain} {said}: {started.stderr.strip()[-300:]}", flush=True)
        return False

    return restart


def main() -> int:
    args, fleet, guest, kvm, group = fresh_guest("warm_cold.py", __doc__, data_mib=768)

    print(f"1. warm: {guest.name} to the eve of its cutover ({group})", flush=True)
    deploy(group, "plan")
    deploy(group, "prepare")  # it installs a kernel in the guest: then what is free is known
    data = 0
    if args.data_mib:
        print(f"   data in the running {guest.name}, before its presync", flush=True)
        data = fill(guest.name, args.data_mib, args.churn_mib)
    deploy(group, "presync")
    print(f"2. churn in the running {guest.name}", flush=True)
    churn(guest.name, args.churn_mib)
    if args.write_kib_s:
        writer(guest.name, args.write_kib_s)
    print(f"3. warm: the cutover of {guest.name}", flush=True)
    _, lines = deploy(group, "cutover")
    setup = setup_seconds(lines, guest.name, guest.xen_host)
    try:
        warm = breakdown(
            journal(ssh, guest.name, kvm.name), setup, start_seconds(lines, guest.name)
        )
    except NoCutover as exc:
        sys.exit(f"{guest.name}: {exc} ({JOURNALS}/{guest.name}.jsonl on {kvm.name})")

    print(f"4. cold: the full copy of {guest.name}, {guest.xen_host} to {kvm.name}", flush=True)
    frozen = paths.plan_inputs(kvm.state_dir, guest.name)
    inputs = must(kvm.name, f"cat {shlex.quote(frozen)}", what="reading its plan inputs")
    found = filesystems(inputs, guest.name, f"{kvm.name}:{frozen}")
    domain = guest.xen_domain or xen_domain(inputs) or guest.name
    copies = cold_copy(fleet, guest, domain, found)
    for step in copies:
        print(f"    {step.name}: {step.seconds:.1f} s, {step.note}", flush=True)
    print(f"5. {guest.domain_name} started again on {kvm.name}, timed", flush=True)
    boot = hand_boot(kvm, guest)

    print()
    cold = Cold(warm, tuple(copies))
    said = report(
        guest.name,
        cold,
        setup is not None,
        boot,
        round(data / MIB),
        args.churn_mib,
        args.write_kib_s,
    )
    print("\n".join(said))
    return 0


if __name__ == "__main__":
    sys.exit(main())
