"""Benchmark: a wave of three guests cut over in one run, against each of them alone, on
the lab: the wall times, and each guest's downtime in the wave against its downtime alone.

    xen2kvm lab exec -- python bench/wave.py

Needs a lab where none of web1, legacy1 and mail1 is migrated yet (a fresh ``xen2kvm lab
up``); it leaves all three migrated. First each guest alone, in the order the wave's
cutover takes them (``xen2kvm.windows.rounds``): the deploy's plan, prepare, presync and
cutover phases for its ``move_<guest>`` group, the cutover run timed. Then all three rolled
back to Xen in one run (``--data phase=rollback``; a second run if the first fails, as
after a guest it could not reach). Then the three in one wave: plan, prepare and presync
(onto the new disks the rollback kept), then the cutover, timed, each phase one run
limited to the three move groups at once.

Each downtime comes from the guest's journal on the KVM host (``downtime-start`` to SSH
answering, as bench/downtime.py reads it): the one alone from the attempt the rollback
ended, the wave's from the current attempt (``xen2kvm.journal.current``: a rollback
starts the move afresh). The wave's windows are placed on one time axis, each from its
``downtime-start`` to its answer (one journal clock, the KVM host's): a cutover that
starts the next round while a guest boots shows windows that overlap.

Each downtime is set against the one projected just before it began
(``xen2kvm.downtime.project`` over the guest's journal then, with what the other guests'
cutovers on the KVM host had measured by then, as the cutover's gate projects it): alone,
the first guest's from assumptions and its configured boot time, the others' from the
cutovers before theirs; in the wave, each from its own cutover alone.

With ``--windows-during-boot false`` every deploy runs over a copy of the lab's inventory
whose KVM host says ``windows_during_boot: false``: a round's windows on kvm1 wait until
the guest that booted there before answers.

Prints the table and ends with one line ``bench wave: guests=3 ratio=X
worst_downtime_ratio=Y worst_projection_error=Z windows_during_boot=B``: the wave's
cutover run's wall time over the slowest single guest's cutover run's, the largest of
each guest's downtime in the wave over its downtime alone, the largest error of a
projection made with something measured (|projected - actual| / actual; the first guest
alone, projected from nothing measured, is shown but not counted), and the setting above.
Not part of CI.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.downtime import INVENTORY, JOURNALS, NoCutover, breakdown, deploy, ssh  # noqa: E402
from tests.lab.runs import inventory_with, journal  # noqa: E402
from xen2kvm import windows  # noqa: E402
from xen2kvm.downtime import Peers, at_gate, project  # noqa: E402
from xen2kvm.inventory import Fleet, Guest, load_fleet, move_group  # noqa: E402
from xen2kvm.journal import DOWNTIME_START, ROLLED_BACK, current  # noqa: E402

GUESTS = ("web1", "legacy1", "mail1.fleet.example")  # waves 1 and 2 of lab.yml: all to kvm1
KVM = "kvm1"

# --- the pure part: journals (and run times) read into the table ----------------------


def attempts(records: list[dict]) -> list[list[dict]]:
    """The journal's attempts, oldest first, each without the ``rolled-back`` mark that
    ended it; the last is the current one (``xen2kvm.journal.current``), perhaps empty."""
    found: list[list[dict]] = [[]]
    for record in records:
        if record.get("step") == ROLLED_BACK:
            found.append([])
        else:
            found[-1].append(record)
    return found


def began(attempt: list[dict]) -> bool:
    """Whether an attempt's cutover began (a ``downtime-start`` in it)."""
    return any(r.get("step") == DOWNTIME_START for r in attempt)


def rolled_back(records: list[dict]) -> bool:
    """Whether the guest was rolled back and nothing of a cutover began since."""
    return len(attempts(records)) > 1 and not began(current(records))


@dataclass(frozen=True)
class Result:
    """One guest: alone, then in the wave."""

    guest: str
    alone: float  # its downtime, migrated alone
    alone_run: float  # the wall time of its cutover run alone
    wave: float  # its downtime in the wave
    wave_start: float  # its downtime-start in the wave (the KVM host's clock)
    alone_projected: Projected | None = None
    wave_projected: Projected | None = None

    @property
    def ratio(self) -> float:
        return self.wave / self.alone if self.alone > 0 else float("inf")

    def errors(self) -> list[float]:
        """The errors of its projections made with something measured."""
        pairs = ((self.alone_projected, self.alone), (self.wave_projected, self.wave))
        return [p.error(actual) for p, actual in pairs if p is not None and p.informed]


@dataclass(frozen=True)
class Projected:
    """A downtime projected just before a cutover began."""

    seconds: float
    informed: bool  # something in it was measured (its own or another guest's cutover)

    def error(self, actual: float) -> float:
        return abs(self.seconds - actual) / actual if actual > 0 else float("inf")

    def __str__(self) -> str:
        return f"{self.seconds:.1f} s{'' if self.informed else ' (nothing measured)'}"


def projected_at(
    guest: Guest, records: list[dict], index: int, journals: dict[str, list[dict]]
) -> Projected | None:
    """What the cutover's gate projected when ``records[index]`` (a ``downtime-start``)
    was written: the journal before its gate (``at_gate``), and the others' cutovers
    measured by then."""
    index = at_gate(records, index)
    peers = Peers.of(journals, besides=guest.name, before=float(records[index]["time"]))
    found = project(records[:index], guest.boot_time, guest.integrity_check, peers)
    if found is None:
        return None
    return Projected(found.total, any(part.measured for part in found.parts))


def result(
    guest: str,
    records: list[dict],
    alone_run: float,
    spec: Guest | None = None,
    journals: dict[str, list[dict]] | None = None,
) -> Result:
    """A guest's two downtimes from its journal: the last attempt a rollback ended that
    held a complete cutover (migrated alone), and the current attempt's (the wave); with
    its inventory entry and the journals on its KVM host, what was projected for each."""
    earlier = [a for a in attempts(records)[:-1] if began(a)]
    if not earlier:
        raise NoCutover(f"{guest}: no cutover before its last rollback")
    alone = breakdown(earlier[-1])
    wave = breakdown(records)  # the current attempt's last cutover
    start = max(float(r["time"]) for r in current(records) if r.get("step") == DOWNTIME_START)
    found = Result(guest, alone.downtime, alone_run, wave.downtime, start)
    if spec is None or journals is None:
        return found
    starts = [i for i, r in enumerate(records) if r.get("step") == DOWNTIME_START]
    back = max(i for i, r in enumerate(records) if r.get("step") == ROLLED_BACK)
    return Result(
        guest, alone.downtime, alone_run, wave.downtime, start,
        alone_projected=projected_at(spec, records, max(i for i in starts if i < back), journals),
        wave_projected=projected_at(spec, records, starts[-1], journals),
    )  # fmt: skip


def wave_ratio(results: Sequence[Result], wave_run: float) -> float:
    """The wave's cutover run over the slowest single guest's cutover run."""
    return wave_run / max(r.alone_run for r in results)


def worst(results: Sequence[Result]) -> Result:
    """The guest whose downtime grew most in the wave (its ratio the largest)."""
    return max(results, key=lambda r: r.ratio)


def worst_error(results: Sequence[Result]) -> float | None:
    """The largest error of a projection made with something measured, if any."""
    errors = [e for r in results for e in r.errors()]
    return max(errors) if errors else None


def summary_line(results: Sequence[Result], wave_run: float, during_boot: bool = True) -> str:
    error = worst_error(results)
    return (
        f"bench wave: guests={len(results)} ratio={wave_ratio(results, wave_run):.2f} "
        f"worst_downtime_ratio={worst(results).ratio:.2f} "
        f"worst_projection_error={'-' if error is None else f'{error:.2f}'} "
        f"windows_during_boot={str(during_boot).lower()}"
    )


def table(results: Sequence[Result], wave_run: float, during_boot: bool = True) -> list[str]:
    """One line per guest, in the order of their windows in the wave (each window from its
    ``downtime-start`` to its answer, in seconds after the first window began: a window
    that begins before the one above it ends overlaps it), then the totals and the
    summary line."""
    first = min(r.wave_start for r in results)
    lines = [
        f"  {'guest':<10} {'alone: downtime':>16} {'cutover run':>12}   "
        f"{'wave: window':>20} {'downtime':>9}   {'ratio':>6}"
    ]
    for r in sorted(results, key=lambda r: r.wave_start):
        start = r.wave_start - first
        window = f"+{start:.1f} to +{start + r.wave:.1f}"
        lines.append(
            f"  {r.guest:<10} {r.alone:14.1f} s {r.alone_run:10.1f} s   "
            f"{window:>18} s {r.wave:7.1f} s   {r.ratio:6.2f}"
        )
    slowest = max(results, key=lambda r: r.alone_run)
    lines.append(
        f"wave cutover run {wave_run:.1f} s / slowest alone ({slowest.guest}) "
        f"{slowest.alone_run:.1f} s = {wave_ratio(results, wave_run):.2f}; the runs alone "
        f"together {sum(r.alone_run for r in results):.1f} s"
    )
    bad = worst(results)
    lines.append(
        f"worst downtime ratio: {bad.guest}, {bad.wave:.1f} s in the wave / {bad.alone:.1f} s "
        f"alone = {bad.ratio:.2f}"
    )
    lines.append("projected just before each cutover began, against the downtime it had:")
    for r in results:
        for when, said, actual in (
            ("alone", r.alone_projected, r.alone),
            ("wave", r.wave_projected, r.wave),
        ):
            if said is not None:
                lines.append(
                    f"  {r.guest:<10} {when:<5} projected {said}, actual {actual:.1f} s, "
                    f"error {said.error(actual):.2f}"
                )
    lines.append(summary_line(results, wave_run, during_boot))
    return lines


# --- the lab --------------------------------------------------------------------------


def deploy_all(groups: Sequence[str], phase: str, inventory: str) -> tuple[float, int, str]:
    """As ``bench.downtime.deploy``, over several move groups at once (one ``--limit``
    each): its seconds, its exit code and the tail of its output; a failure is the
    caller's to judge."""
    limits = [arg for group in groups for arg in ("--limit", group)]
    command = [sys.executable, "-m", "pyinfra", "-y", inventory, "deploy.py",
               *limits, "--data", f"phase={phase}"]  # fmt: skip
    print(f"--> {' '.join(command[2:])}", flush=True)
    started = time.time()
    result = subprocess.run(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )
    seconds = time.time() - started
    print(f"    {phase}: {seconds:.1f} s (rc {result.returncode})", flush=True)
    return seconds, result.returncode, "\n".join(result.stdout.splitlines()[-80:])


def must_deploy_all(groups: Sequence[str], phase: str, inventory: str) -> float:
    seconds, rc, tail = deploy_all(groups, phase, inventory)
    if rc != 0:
        sys.exit(f"the {phase} phase of {', '.join(groups)} failed (rc {rc}):\n{tail}")
    return seconds


def rounds(fleet: Fleet, names: Sequence[str]) -> list[list[str]]:
    """The wave's cutover rounds over these guests, as ``tasks.move.window_order``
    computes them (first fit, in inventory order)."""
    guests = [g for g in fleet.guests.values() if g.name in names]
    return windows.rounds([(g.name, (g.xen_host, str(g.kvm_host))) for g in guests])


def journals(fleet: Fleet, names: Sequence[str]) -> dict[str, list[dict]]:
    return {n: journal(ssh, n, str(fleet.guests[n].kvm_host)) for n in names}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--windows-during-boot",
        choices=("true", "false"),
        default="true",
        help="the KVM host's windows_during_boot (default: lab.yml's, true): false runs "
        "the deploys over a copy of the lab's inventory that sets it",
    )
    args = parser.parse_args()
    if "XEN2KVM_LAB_DIR" not in os.environ:
        sys.exit("run it inside the lab: xen2kvm lab exec -- python bench/wave.py")
    during_boot = args.windows_during_boot == "true"
    inventory = INVENTORY
    if not during_boot:
        where = Path(tempfile.mkdtemp(prefix="x2k-bench-wave-"))
        inventory = str(inventory_with(where, KVM, windows_during_boot=False))
    fleet = load_fleet(ROOT / "inventory" / "lab.yml")
    taken = rounds(fleet, GUESTS)
    names = [name for group in taken for name in group]  # as the wave takes them
    groups = [move_group(name) for name in names]
    begun = [n for n, records in journals(fleet, names).items() if began(current(records))]
    if begun:
        sys.exit(
            f"{', '.join(begun)}: cutover begun already ({JOURNALS} on the KVM host): "
            "xen2kvm lab down && xen2kvm lab up, then run this again"
        )
    said = "; ".join(" and ".join(group) for group in taken)
    print(f"the wave's windows, round by round: {said}", flush=True)
    print(f"{KVM} windows_during_boot: {args.windows_during_boot} (inventory {inventory})")

    alone: dict[str, float] = {}
    for number, (name, group) in enumerate(zip(names, groups, strict=True), start=1):
        print(f"1.{number} {name} alone ({group})", flush=True)
        for phase in ("plan", "prepare", "presync"):
            deploy(group, phase, inventory)
        alone[name], _ = deploy(group, "cutover", inventory)

    print(f"2. all three back to Xen ({', '.join(groups)})", flush=True)
    _, rc, tail = deploy_all(groups, "rollback", inventory)
    if rc != 0:  # a guest it could not reach when it began: the next run finishes
        print(f"    the rollback failed (rc {rc}): once more\n{tail[-1500:]}", flush=True)
        must_deploy_all(groups, "rollback", inventory)
    left = [n for n, records in journals(fleet, names).items() if not rolled_back(records)]
    if left:
        sys.exit(f"{', '.join(left)}: not rolled back (no {ROLLED_BACK} in the journal)")

    print("3. the three in one wave", flush=True)
    for phase in ("plan", "prepare", "presync"):
        must_deploy_all(groups, phase, inventory)
    wave_run = must_deploy_all(groups, "cutover", inventory)

    found = journals(fleet, names)
    try:
        results = [result(n, found[n], alone[n], fleet.guests[n], found) for n in names]
    except NoCutover as exc:
        sys.exit(f"{exc} ({JOURNALS} on the KVM host)")
    print()
    print(f"downtimes ({DOWNTIME_START} to answering, from each journal) and cutover runs:")
    print("\n".join(table(results, wave_run, during_boot)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
