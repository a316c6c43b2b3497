"""
Keep the migration journal on a move's destination host (the KVM host, or a rehomed
guest's new dom0): the tool that writes it and its milestones, and the per-guest lock that
keeps a guest to one run at a time. The step names are ``xen2kvm.journal``'s.
"""

from __future__ import annotations

import re
import shlex
from datetime import UTC, datetime
from pathlib import Path

from pyinfra import host, logger
from pyinfra.api import OperationError, OperationValueError, QuoteString, StringCommand, operation
from pyinfra.api.host import Host
from pyinfra.operations import files

from facts.journal import MigrationChanges, MigrationCommand, MigrationJournal, MigrationLock
from operations.net import plain_address
from operations.util.checks import (
    check_bool,
    check_guest,
    check_path,
    check_port,
    check_timeout,
)
from operations.util.facts import fact
from xen2kvm import runid
from xen2kvm.journal import (
    ANSWERING,
    FIXUPS_DONE,
    KVM_ANSWERING,
    MILESTONES,
    TOOL,
    done,
    fixups_current,
    redone,
)

TOOL_SOURCE = Path(__file__).resolve().parent.parent / "files" / "x2k-journal.sh"


@operation()
def tool():
    """
    Install ``x2k-journal``, which runs and records each migration step on this host.

    **Example:**

    .. code:: python

        journal.tool()
    """
    yield from files.put._inner(src=str(TOOL_SOURCE), dest=TOOL, mode="0755")


@operation()
def milestone(
    guest: str,
    step: str,
    state_dir: str = "/var/lib/xen2kvm",
    requires: list[str] | None = None,
):
    """
    Record that a guest reached a milestone (one of ``xen2kvm.journal.MILESTONES``), once
    per migration attempt: a rerun does not record it again.

    + guest: the guest
    + step: the milestone's name
    + state_dir: where the journal lives
    + requires: hosts that must not have failed in this run (say, the guest that announces
      its addresses): if one did, nothing is recorded and the run stops here

    **Example:**

    .. code:: python

        from xen2kvm.journal import CUTOVER_COMPLETE

        journal.milestone(guest="web1", step=CUTOVER_COMPLETE)
    """
    if step not in MILESTONES:
        raise OperationValueError(
            f"not a journal step name for a milestone: {step!r} (one of {', '.join(MILESTONES)})"
        )
    if host.state.is_executing and requires:
        failed = sorted(h.name for h in host.state.failed_hosts if h.name in requires)
        if failed:
            raise OperationError(
                f"{guest}: {step} is not recorded: {', '.join(failed)} could not be reached "
                "or failed in this run. Run again: the next run does what is left"
            )
    if done(fact(host, MigrationJournal, state_dir=state_dir, guest=guest), step):
        host.noop(f"{guest}: {step} is already in the journal")
        return
    yield StringCommand(TOOL, QuoteString(state_dir), QuoteString(guest), QuoteString(step), "mark")


def _check_answering(step: str, address: str, port: int, timeout: int) -> str:
    if step not in ANSWERING:
        raise OperationValueError(f"not an answer's milestone: {step!r} ({', '.join(ANSWERING)})")
    ip = str(plain_address(address))
    check_port(port)
    check_timeout("timeout", timeout)
    return ip


def _pending(
    guest: str, address: str, port: int, timeout: int, step: str, state_dir: str
) -> str | None:
    """The checked address to watch or wait on; None (said) once ``step`` is marked."""
    check_guest(guest)
    ip = _check_answering(step, address, port, timeout)
    if done(fact(host, MigrationJournal, state_dir=state_dir, guest=guest), step):
        host.noop(f"{guest}: {step} is already in the journal")
        return None
    return ip


@operation(is_idempotent=False)
def watch(
    guest: str,
    address: str,
    port: int = 22,
    timeout: int = 600,
    step: str = KVM_ANSWERING,
    state_dir: str = "/var/lib/xen2kvm",
):
    """
    Watch, from this host, for a guest just started here to answer: a watcher left
    running in the background marks ``step`` in the journal the first time the TCP port
    answers (the downtime's end, to the second), or gives up after ``timeout`` seconds.
    Returns at once: the run goes on (the next guest's window) while this one boots;
    ``journal.answered`` waits for the mark. Nothing is started once the step is in the
    journal, or while a watcher of this attempt runs.

    + guest: the guest
    + address: the IPv4 or IPv6 address it answers on
    + port: its SSH port
    + timeout: how long to watch, in seconds
    + step: the milestone to mark (``kvm-answering``, ``guest-answering``)
    + state_dir: where the journal lives

    **Example:**

    .. code:: python

        journal.watch(guest="web1", address="198.51.100.101", port=22, timeout=600)
    """
    ip = _pending(guest, address, port, timeout, step, state_dir)
    if ip is None:
        return
    yield StringCommand(
        TOOL, QuoteString(state_dir), QuoteString(guest), QuoteString(step), "watch",
        QuoteString(str(timeout)), QuoteString(ip), QuoteString(str(port)),
    )  # fmt: skip


@operation(is_idempotent=False)
def answered(
    guest: str,
    address: str,
    port: int = 22,
    timeout: int = 600,
    step: str = KVM_ANSWERING,
    state_dir: str = "/var/lib/xen2kvm",
    domain: str | None = None,
    uri: str | None = None,
):
    """
    Wait until the journal records that a guest answers (its ``journal.watch`` watcher
    marked ``step``); fails, saying so, once the watcher gave up without an answer, or,
    given its libvirt ``domain`` here, as soon as libvirt shows it shut off or crashed
    (its qemu died, or it powered off: it will not answer, and waiting out the timeout
    would only lengthen the downtime).

    + guest: the guest
    + address: the address it was watched on (for the message)
    + port: its SSH port (for the message)
    + timeout: how long its watcher watched (for the message)
    + step: the milestone (``kvm-answering``, ``guest-answering``)
    + state_dir: where the journal lives
    + domain: its libvirt domain on this host, checked every 10 s while waiting
    + uri: the libvirt URI of that domain

    **Example:**

    .. code:: python

        journal.answered(
            guest="web1", address="198.51.100.101", port=22, timeout=600,
            domain="web1", uri="qemu:///system",
        )
    """
    ip = _pending(guest, address, port, timeout, step, state_dir)
    if ip is None:
        return
    late = f"{guest}: {ip} port {port} did not answer within {timeout} s of its start"
    if domain is None:
        yield StringCommand(
            TOOL, QuoteString(state_dir), QuoteString(guest), QuoteString(step), "wait",
            *_fail(late),
        )  # fmt: skip
        return
    if not uri:
        raise OperationValueError(f"{guest}: a libvirt domain to watch needs its uri")
    stopped = (
        f"{guest}: its domain {domain} stopped before it answered (libvirt's state above; "
        f"libvirt's log of the domain says why: /var/log/libvirt/qemu/{domain}.log for "
        "qemu:///system). A next run starts it again"
    )
    yield StringCommand(
        TOOL, QuoteString(state_dir), QuoteString(guest), QuoteString(step), "wait",
        QuoteString(uri), QuoteString(domain),
        "|| { case $? in 4) echo", QuoteString(f"xen2kvm: {stopped}"), ">&2 ;;",
        "*) echo", QuoteString(f"xen2kvm: {late}"), ">&2 ;; esac; exit 1; }",
    )  # fmt: skip


@operation()
def fixed(guest: str, fixups: dict[str, tuple[str, ...]], state_dir: str = "/var/lib/xen2kvm"):
    """
    Record that a guest's fix-ups are current with every copy so far (``fixups-done``,
    naming those redone because a copy changed their files), after they ran; the copies'
    recorded changes are then forgotten. Nothing when no copy ran since the last record.

    + guest: the guest
    + fixups: each fix-up's name (``bootloader``) and the paths in the guest's tree it
      depends on (``/boot``), as the fix-ups were given them
    + state_dir: where the journal lives

    **Example:**

    .. code:: python

        journal.fixed(guest="web1", fixups={"bootloader": ("/boot",)})
    """
    check_guest(guest)
    for name in fixups:
        if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9-]+", name):
            raise OperationValueError(f"a fix-up's name is a-z, 0-9 and '-': {name!r}")
    records = fact(host, MigrationJournal, state_dir=state_dir, guest=guest)
    if fixups_current(records):
        host.noop(f"{guest}: no copy since its fix-ups")
        return
    yield StringCommand(
        TOOL, QuoteString(state_dir), QuoteString(guest), FIXUPS_DONE, "mark",
        QuoteString(",".join(fixups_to_redo(host, guest, fixups, state_dir, records))),
    )  # fmt: skip


def fixups_to_redo(
    on: Host, guest: str, fixups: dict[str, tuple[str, ...]], state_dir: str, records: list[dict]
) -> list[str]:
    """The fix-ups of ``guest`` to run (again) now (``xen2kvm.journal.redone``), from its
    journal's ``records`` and the changes its copies recorded on ``on``, its destination."""
    paths = tuple(sorted({path for watched in fixups.values() for path in watched}))
    touched = fact(on, MigrationChanges, state_dir=state_dir, guest=guest, paths=paths)
    return redone(records, touched, fixups)


def _since(lock: dict) -> str:
    return datetime.fromtimestamp(lock["since"], UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _refused(guest: str, path: str, lock: dict, ours: str) -> str:
    owner = lock["owner"] or "a run that is just taking it (no owner written yet)"
    parsed = runid.parse(lock["owner"] or "")
    alive = ""
    if parsed and parsed[0] == (runid.parse(ours) or ("",))[0]:
        alive = f" (pid {parsed[1]} still runs on this controller)"
    return (
        f"{guest} is locked on {host.name} by another xen2kvm run: {owner}{alive}, since "
        f"{_since(lock)}. Wait for that run to end; if no run is active, clear the lock on "
        f"{host.name} with: rm -r {shlex.quote(path)}"
    )


def _fail(message: str) -> list:
    return ["|| { echo", QuoteString(f"xen2kvm: {message}"), ">&2; exit 1; }"]


def _owner_is(path: str, owner: str) -> list:
    return ['test "$(cat', QuoteString(f"{path}/owner"), '2>/dev/null)" =', QuoteString(owner)]


def _remove(path: str) -> list:
    return ["rm -f", QuoteString(f"{path}/owner"), "&& rmdir", QuoteString(path)]


def _stop_left(state_dir: str, guest: str) -> list:
    """What a run that is gone left running for the guest, stopped (see x2k-journal)."""
    return [TOOL, QuoteString(state_dir), QuoteString(guest), "- stop"]


def _make(path: str, owner: str) -> list:
    return ["mkdir", QuoteString(path), "&& printf '%s\\n'", QuoteString(owner), ">",
            QuoteString(f"{path}/owner")]  # fmt: skip


@operation()
def lock(guest: str, owner: str, state_dir: str = "/var/lib/xen2kvm", held: bool = True):
    """
    Hold (or release) a guest's migration lock on its KVM host: one run at a time per
    guest. The lock is the directory ``<state_dir>/locks/<guest>``, taken atomically
    with ``mkdir``, and holds the run's id in ``owner``.

    + guest: the guest
    + owner: this run's id, ``host:pid:start`` of the controller (``xen2kvm.runid``)
    + state_dir: where the locks live
    + held: whether this run should hold the lock; ``False`` releases it if it is ours
      (or left by a run of this controller that is gone) and leaves anyone else's alone

    A lock held by another run is an error naming it, except a lock of a run of this
    same controller that no longer runs (crashed or interrupted): it is taken over.

    A command that such a run left running on this host (a copy goes on when its
    controller dies: nothing tells it over SSH) is stopped before the lock is taken, or
    released: no two copies of one guest ever run at once. So is one running while no
    run holds the lock (its lock was cleared by hand).

    **Example:**

    .. code:: python

        journal.lock(guest="web1", owner=runid.run_id())
    """
    check_guest(guest)
    if not isinstance(owner, str) or runid.parse(owner) is None:
        raise OperationValueError(f"owner must be a run id like host:pid:start, not {owner!r}")
    check_path("state_dir", state_dir)
    check_bool("held", held)

    path = f"{state_dir}/locks/{guest}"
    lock = fact(host, MigrationLock, state_dir=state_dir, guest=guest)
    current = lock["owner"] if lock else None
    changed = _fail(f"{guest}: the lock of {current} changed hands meanwhile: see {path}/owner")
    left = fact(host, MigrationCommand, state_dir=state_dir, guest=guest)
    stop: list = []
    if left and left["running"]:
        stop = [*_stop_left(state_dir, guest), "&&"]

    def say(what: str) -> None:
        # Say it once: while planning, or when the run plans nothing (pyinfra -y).
        if not host.state.is_executing or not getattr(host.state, "check_for_changes", True):
            if stop:
                what += f"; stopping {left['step']} (pid {left['pid']}), which it left running"
            logger.warning(f"{host.name}: {guest}: {what}")

    if not held:
        if current == owner:
            yield StringCommand(*_remove(path))
        elif current and runid.gone(current, owner):  # left by a run here that is gone
            say(f"releasing the lock of {current}, a run of this controller that no longer runs")
            yield StringCommand(*_owner_is(path, current), "&&", *stop, *_remove(path), *changed)
        else:
            host.noop(f"{guest}: no lock of this run on {host.name}")
        return

    if current == owner:
        host.noop(f"{guest}: already locked by this run")
        return
    if lock is None:
        if stop:
            say("no run holds the lock, its last run is gone")
        yield StringCommand(
            *stop, "mkdir -p", QuoteString(f"{state_dir}/locks"), "&&", *_make(path, owner),
            *_fail(f"{guest} was just locked by another run: see {path}/owner"),
        )  # fmt: skip
        return
    if not (current and runid.gone(current, owner)):
        raise OperationError(_refused(guest, path, lock, owner))
    say(f"taking over the lock of {current}, a run of this controller that no longer runs")
    yield StringCommand(
        *_owner_is(path, current), "&&", *stop, *_remove(path), "&&", *_make(path, owner),
        *changed,
    )  # fmt: skip
