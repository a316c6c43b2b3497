"""
Steps shared by the phases, for every destination (functions that define operations when
called; nothing runs on import, unlike the task files, which pyinfra executes as deploy
code). What a destination does its own way is in ``tasks/destinations/``.
"""

import posixpath
from io import StringIO

from pyinfra import host, inventory
from pyinfra.api import OperationError
from pyinfra.context import ctx_host
from pyinfra.facts.files import FileContents
from pyinfra.operations import files, python

from facts.commands import CommandsMissing
from facts.journal import MigrationJournal
from operations import disk, journal, net, preflight, ssh, sync, xen
from operations.util.facts import fact
from tasks.destinations import Destination
from tasks.move import Move, moves
from xen2kvm import paths, requirements, runid
from xen2kvm.journal import (
    INTEGRITY_SKIPPED,
    copy_step,
    integrity_step,
    precheck_step,
    recheck_step,
)

# Warm passes: the first copies everything, each further one only what changed since;
# they stop once a pass moves less than CONVERGED_BELOW (the delta has converged), and
# the final copy in the window is no larger than the last of them.
WARM_PASSES = 3
CONVERGED_BELOW = 64 * 1024 * 1024

# Never worth copying (kernel and runtime filesystems, should -x miss them).
RUNTIME = ("/proc/*", "/sys/*", "/dev/*", "/run/*", "/tmp/*", "/lost+found")  # noqa: S108


def needs() -> dict[str, str]:
    """What this host needs for the moves of the run not yet complete, in every role it
    has in them (a dom0 may be a source and a rehome's destination: the union)."""
    roles, filesystems, lvm = [], [], False
    for move in moves("dest"):
        if not move.migrated:
            roles.append(move.to.dest_role)
            filesystems += move.to.filesystems(move)
            lvm = lvm or move.to.makes_lvs(move)
    if any(not move.migrated for move in moves("source")):
        roles.append(requirements.SOURCE)
    roles += [move.to.guest_role for move in moves("guest") if not move.migrated]
    return requirements.needs(roles, filesystems, lvm)


_MISSING: dict[int, list[str]] = {}


def refuse_missing_commands() -> None:
    """Refuse the run, before anything changes, when any of its hosts lacks a command its
    roles need: one line per host and missing thing, with its fix (``kvm1: kpartx is
    missing: apt-get install kpartx``). Read for every host of the run at once (deploy
    code, the first host to get here); the answer is kept for the others."""
    key = id(host.state)
    if key not in _MISSING:
        lines: list[str] = []
        for other in host.state.inventory.get_active_hosts():
            with ctx_host.use(other):
                wanted = needs()
                if wanted:
                    missing = fact(other, CommandsMissing, names=list(wanted))
                    lines += [
                        f"{other.name}: {name} is missing: {wanted[name]}" for name in missing
                    ]
        _MISSING[key] = sorted(lines)
    if _MISSING[key]:
        raise OperationError("\n".join(_MISSING[key]))


def host_keys(source: str, address: str) -> str:
    """known_hosts lines for a source at the address the copies dial (its migration
    address, perhaps, not the one pyinfra reaches it at), from its own host keys (read
    over pyinfra's SSH)."""
    other = inventory.get_host(source)
    lines = []
    for kind in ("ed25519", "ecdsa", "rsa"):
        key = fact(other, FileContents, path=f"/etc/ssh/ssh_host_{kind}_key.pub")
        if key:
            fields = key[0].split()
            lines.append(f"{address} {fields[0]} {fields[1]}")
    return "\n".join(lines) + "\n"


def trust_host_keys(move: Move, source: str, address: str, why: str):
    """The destination's known_hosts for one source (the guest, or its dom0), at the
    address the copies dial."""
    files.put(
        name=f"{move.guest.name}: host keys of {source} ({address}) on {move.dest}, {why}",
        src=StringIO(host_keys(source, address)),
        dest=move.known_hosts(source),
        mode="0600",
    )


def copy(
    move: Move,
    phase: str,
    source_host: str,
    source_address: str,
    source_base: str,
    warm_pass: int = 1,
    shared: bool = False,
):
    """One rsync per filesystem of the guest, into its tree on the destination. A further
    warm pass (``warm_pass`` 2 and up) copies a filesystem only while its last pass moved
    ``CONVERGED_BELOW`` or more. ``shared``: each rides on the window's connection to the
    dom0 (``dom0_connection``) when it runs."""
    guest = move.guest
    again = f" (pass {warm_pass})" if warm_pass > 1 else ""
    for mountpoint in move.to.copied(move):
        sync.tree(
            name=f"{guest.name}: {phase.replace('catchup', 'catch-up')} copy of {mountpoint} "
            f"to {move.dest}{again}",
            guest=guest.name,
            step=copy_step(f"{move.to.copy_prefix}{phase}", mountpoint),
            **_ends(move, source_host, source_address, source_base, mountpoint, shared),
            until=move.to.complete,
            converged_below=CONVERGED_BELOW if warm_pass > 1 else None,
        )


def excludes(move: Move, mountpoint: str) -> list[str]:
    """What a copy of the filesystem at ``mountpoint`` neither copies nor deletes (nor its
    integrity check compares): the destination's own files, the guest's that it leaves
    out, runtime filesystems."""
    return excluded(move.to, mountpoint)


def excluded(to: Destination, mountpoint: str) -> list[str]:
    """``excludes`` for a destination kind."""
    if mountpoint != "/":
        return ["/lost+found"]
    return [*to.own_files, *to.left_out, *RUNTIME]


def _ends(
    move: Move,
    source_host: str,
    source_address: str,
    source_base: str,
    mountpoint: str,
    shared: bool = False,
) -> dict[str, str | list[str] | None]:
    """What a copy of one filesystem and its integrity check share: where it is read (and
    through which key and host keys, on which shared connection), where it goes, what it
    leaves out, the journal."""
    return {
        "connection": paths.connection(move.state_dir, move.guest.name) if shared else None,
        "source": sync.module_source("root", source_address, paths.below(source_base, mountpoint)),
        "dest": f"{paths.below(move.tree, mountpoint).rstrip('/')}/",
        "ssh_key": move.key,
        "known_hosts": move.known_hosts(source_host),
        "state_dir": move.state_dir,
        "excludes": excludes(move, mountpoint),
    }


def integrity(
    move: Move, source_host: str, source_address: str, source_base: str, shared: bool = False
):
    """After the final copy, before the fix-ups touch the tree: each filesystem compared
    with the stopped source (``sync.identical``), as the inventory's ``integrity`` says; a
    difference fails the guest's cutover before its new copy starts. ``skip_integrity``
    skips it, its reason said in the run and the journal's mark. ``shared``: as
    ``copy``'s."""
    guest = move.guest
    if guest.skip_integrity:
        journal.milestone(
            name=f"{guest.name}: integrity check skipped: {guest.skip_integrity}",
            guest=guest.name,
            step=INTEGRITY_SKIPPED,
            state_dir=move.state_dir,
        )
        return
    staged = guest.integrity == "staged"
    for mountpoint in move.to.copied(move):
        sync.identical(
            name=f"{guest.name}: {mountpoint} on {move.dest} identical to the stopped source "
            f"({guest.integrity})",
            guest=guest.name,
            step=integrity_step(move.to.copy_prefix, mountpoint),
            **_ends(move, source_host, source_address, source_base, mountpoint, shared),
            content=guest.integrity != "metadata",
            marker=checked_marker(move, mountpoint) if staged else None,
        )


def checked_marker(move: Move, mountpoint: str) -> str:
    """Where the destination keeps the time a staged check before the downtime began, for
    the filesystem at ``mountpoint`` (its journal step's name, ``/`` made ``:``)."""
    step = precheck_step(move.to.copy_prefix, mountpoint).replace("/", ":")
    return posixpath.join(move.state_dir, "checked", move.guest.name, step)


def integrity_before(move: Move, caught_up: bool = False) -> None:
    """A staged integrity check's first half (``integrity: staged``), before the downtime:
    each filesystem of the warm copy compared with the running guest, every file's
    content read; a file whose content differs under the same size and time (which no
    quick check of a copy would mend) stops the cutover before the guest is stopped.
    ``caught_up``: its catch-up half, just before the stop, the same comparison of only
    what the catch-up pass brought since (the window's half then reads only what the
    final copy wrote)."""
    guest = move.guest
    if guest.skip_integrity or guest.integrity != "staged":
        return
    brought, step = (
        ("the catch-up", recheck_step) if caught_up else ("the warm copies", precheck_step)
    )
    for mountpoint in move.to.copied(move):
        sync.identical(
            name=f"{guest.name}: {mountpoint} on {move.dest}: the content {brought} "
            "brought, against the running guest (staged)",
            guest=guest.name,
            step=step(move.to.copy_prefix, mountpoint),
            **_ends(move, guest.name, move.guest_dialled, "", mountpoint),
            marker=checked_marker(move, mountpoint),
            source_runs=True,
            since=caught_up,
        )


def source_mounts(move: Move, what: str, mounted: bool):
    """On the dom0: the stopped guest's LVs mounted read-only below its source root,
    parents first, or let go of, children first."""
    root = paths.source_root(move.guest)
    lvs = move.source_lvs
    if mounted:
        preflight.source_unused(
            name=f"{move.guest.name}: no Xen domain on {move.source.name} uses its LVs",
            guest=move.guest.name,
            domain=move.xen_domain,
            devices=move.source_devices,
        )
    if not mounted:
        tree_unmounted(f"{move.guest.name}: its LVs {what}", root, lvs)
        return
    for mountpoint, device in lvs:
        disk.mount(
            name=f"{move.guest.name}: {mountpoint} {what}",
            device=device,
            path=paths.below(root, mountpoint),
            options=f"ro,{disk.TREE_OPTIONS}",
            root=root,
        )


def tree_unmounted(label: str, root: str, mounts: list[tuple[str, str]]) -> None:
    """A guest's tree at ``root`` let go in one operation (``disk.unmounted``, named
    ``label`` and the mount points in the order they go): ``mounts`` are its (mount point,
    device) pairs, parents first, as they were mounted."""
    disk.unmounted(
        name=f"{label} ({', '.join(point for point, _ in reversed(mounts))})",
        mounts=[(device, paths.below(root, point)) for point, device in mounts],
    )


def readable_guest(move: Move, why: str = "") -> None:
    """On the running guest: the destination's key may read all of it (the read-only rsync
    module of its ``/``; the module file written again after a reboot took it)."""
    sync.access(
        name=f"{move.guest.name}: {move.dest} may read it with rsync{why}",
        key_host=move.dest,
        key_path=move.key,
        from_address=move.address,
        root="/",
    )


def source_let_go(move: Move):
    """On the dom0: the stopped guest's LVs unmounted, and the destination's key no longer
    reads the dom0 (they were mounted, and the key let in, for the window)."""
    source_mounts(move, f"unmounted on {move.source.name}", mounted=False)
    dom0_readable(move, readable=False)


def dom0_readable(move: Move, readable: bool):
    """On the dom0: the destination's key may read the source mounts (the read-only rsync
    module of the dom0's source root, whatever is mounted there), or no longer."""
    name = move.guest.name
    sync.access(
        name=f"{name}: {move.dest} may read the stopped guest with rsync"
        if readable
        else f"{name}: the key of {move.dest} no longer reads the dom0",
        key_host=move.dest,
        key_path=move.key,
        from_address=move.dom0_address,
        root=paths.source_base(),
        present=readable,
    )


def dom0_connection(move: Move, held: bool):
    """On the destination: a connection to the guest's dom0 held open for its window (its
    key's, as the final copies make it), or closed (``ssh.master``)."""
    guest, source = move.guest.name, move.source.name
    ssh.master(
        name=f"{guest}: a connection from {move.dest} to {source} for the final copies"
        if held
        else f"{guest}: the connection from {move.dest} to {source} closed",
        path=paths.connection(move.state_dir, guest),
        address=move.dom0_dialled,
        ssh_key=move.key,
        known_hosts=move.known_hosts(source),
        present=held,
    )


def projected_downtime(move: Move, gate: bool, force: bool = False):
    """On the destination: the guest's projected downtime, said; as the cutover's gate,
    refused over its budget (see ``preflight.downtime``)."""
    preflight.downtime(
        name=f"{move.guest.name}: {move.projection()}",
        guest=move.guest.name,
        state_dir=move.state_dir,
        boot_time=move.guest.boot_time,
        budget=move.guest.downtime_budget,
        integrity=move.guest.integrity_check,
        gate=gate,
        force=force,
    )


def xen_state(move: Move, dom0: str, config: str, running: bool, again: bool = False):
    """On a dom0: the guest's autostart link and its domain, both on or both off. Started:
    the link first. Stopped: the domain first, so a guest that does not stop in time keeps
    its autostart (it still runs on Xen, and a dom0 reboot brings it back); its KVM copy
    starts only after both succeeded (the cutover's barrier), so a link left by a failed
    run cannot start it beside the KVM copy."""
    name, more = move.guest.name, " again" if again else ""

    def link() -> None:
        xen.autostart(
            name=f"{name}: {'autostart' if running else 'no autostart'} on {dom0}{more}",
            config=config,
            enabled=running,
        )

    if running:
        link()
    xen.domain(
        name=f"{name}: {'running' if running else 'stopped'} on {dom0}{more}",
        domain=move.xen_domain,
        config=config,
        running=running,
        shutdown_timeout=move.guest.shutdown_timeout,
    )
    if not running:
        link()


def reconnect(state, host):
    """The guest's SSH connection went with its old domain: open one to the new one."""
    host.disconnect()
    host.connect(raise_exceptions=True)


def announce(move: Move, where: str):
    """From inside the guest, wherever it now runs: take its addresses back, each on the
    interface that holds it (a guest with NICs on two networks has addresses on both)."""
    python.call(name=f"{move.guest.name}: reconnect to the {where} guest", function=reconnect)
    net.arp_announce(
        name=f"{move.guest.name}: announce its addresses ({where})",
        addresses=list(move.guest.ips),
    )


def guest_locks(held: bool):
    """On this destination: this run's lock on each guest it changes (see tasks/lock.py).

    A guest whose move is complete (as the run found it) is not locked: it gets only its
    end state, and a second run over a finished wave changes nothing. A rollback changes
    every guest it covers; a plan run only reads, so it takes none. Releasing covers every
    guest: a run of this controller that stopped once a guest's move was complete left a
    lock no later run takes.
    """
    if host.data.get("phase") == "plan":  # checks only: a plan run changes nothing
        return
    rollback = host.data.get("phase") == "rollback"
    for move in moves("dest", need_plan=not rollback):
        if held and move.migrated and not rollback:
            continue
        journal.lock(
            name=f"{move.guest.name}: {'locked for this run' if held else 'lock released'} "
            f"on {move.dest}",
            guest=move.guest.name,
            owner=runid.run_id(),
            state_dir=move.state_dir,
            held=held,
        )


# Which fix-ups a guest's cutover must redo, once its final copy ran (read on the first
# fix-up's ``_if``, at execution: the copies' changes are then known).
_REDO: dict[tuple[str, str], list[str]] = {}


def if_touched(move: Move, name: str, window: bool) -> dict:
    """pyinfra's ``_if`` for the fix-up ``name`` (one of ``move.to.fixup_paths``): in the
    cutover's window (``window``), it runs only when the copies since the last fix-ups
    changed what it depends on (or the fix-ups never ran in this attempt); after a warm
    copy, always. The journal's ``fixups-done`` says which ran again."""
    if not window:
        return {}
    this, watched = ctx_host.get(), move.to.fixup_paths
    key = (this.name, move.guest.name)

    def needed() -> bool:
        if key not in _REDO:
            records = fact(this, MigrationJournal, state_dir=move.state_dir, guest=key[1])
            _REDO[key] = journal.fixups_to_redo(this, key[1], watched, move.state_dir, records)
        return name in _REDO[key]

    return {"_if": needed}


def fixups_done(move: Move) -> None:
    """After a guest's fix-ups: the journal's ``fixups-done``, naming those redone."""
    journal.fixed(
        name=f"{move.guest.name}: its fix-ups are current with its copies",
        guest=move.guest.name,
        fixups=move.to.fixup_paths,
        state_dir=move.state_dir,
    )
