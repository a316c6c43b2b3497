"""
Copy a guest's files to its new disk: the migration key, its restricted access to the
source, and the rsync runs themselves.

The KVM host pulls. Its dedicated key (never the operator's) is allowed on the source only
from the KVM host's address and only for one command, rsync's own daemon over SSH
(``rsync --server --daemon --config=FILE .``): whatever the client asks, the source runs
that, which serves one read-only module (``x2k``), chrooted into the directory the key may
read. The module file is the tool's, written beside the key's line on every run that
needs it, in ``/run`` (``MODULE_DIR``): never part of a guest's copy, gone at a reboot.
rsync alone, of any release from Debian 11's 3.2.3 on: no ``rrsync`` (Debian 12's rsync
only), no Python. The copies name what they read as ``user@address::x2k/path/``
(``module_source``). The key is removed after cutover. Host keys are checked against a
known_hosts file the tool writes from the source's own host keys: no
``StrictHostKeyChecking=no`` anywhere.
"""

from __future__ import annotations

import hashlib
import posixpath
import shlex
from collections.abc import Generator

from pyinfra import host, inventory
from pyinfra.api import OperationError, OperationValueError, QuoteString, StringCommand, operation
from pyinfra.facts.files import File, FileContents

from facts.journal import MigrationJournal
from facts.tree import where
from operations import ssh
from operations.util.checks import check_bool, check_path
from operations.util.facts import fact
from operations.util.tree import checked, relative
from xen2kvm import render
from xen2kvm.journal import CUTOVER_COMPLETE, TOOL, done, lists_changes, summarise
from xen2kvm.units import human

KEY_COMMENT = "xen2kvm-migration"
# The rsync module the migration key reads, and where its files live on the sources (a
# tmpfs: not on the guest's disk, not in its copy, whose /run/* is excluded and -x skips).
MODULE = "x2k"
MODULE_DIR = "/run/xen2kvm"
# What a root cannot hold: the authorized_keys line's quoting ("\ , and spaces), what
# rsyncd.conf would read otherwise (% expands a variable, a final \ continues the line).
_NOT_IN_ROOT = "\"'\\,% "
# --sparse: holes stay holes (a 2 GiB sparse file with 4 KiB of data takes 4 KiB on the new
# disk, not 2 GiB). No --inplace: with -H it writes through hard links the source has since
# broken (rsync's own man page: a "tug of war"; seen with rsync 3.2.7 and 3.5.0), silently
# giving one file another's content. Without it, a changed file is written to a temporary
# copy beside it and renamed: the final pass needs free space for the largest changed file
# (its allocated blocks, --sparse keeps holes out of the copy too).
RSYNC = "rsync -aHAXx --numeric-ids --delete --sparse --stats --info=progress2"
# A final copy and the catch-up before it also print each name they changed, "X2K-CHANGED
# ITEMIZE NAME" (rsync escapes a name's control characters): x2k-journal keeps them, for
# the window's fix-ups to know what was touched (facts.journal.MigrationChanges). A presync
# copy, always followed by all the fix-ups, does not (the first one would list every file
# of the guest).
CHANGED = "--out-format='X2K-CHANGED %i %n'"
# The integrity check: the same comparison, read-only (--dry-run), each difference one line
# with rsync's itemized change (what differs: content, size, time, mode, owner, group, ACL,
# xattrs, a link's target, a hard link, a device's number, a file missing or extra). With
# --checksum every file's content is compared, not only its size and time. --modify-window
# stays 0: both sides keep nanoseconds.
COMPARE = "rsync -aHAXx --numeric-ids --delete --dry-run --out-format='X2K-DIFF %i %n%L'"
# The content of named files only (``--files-from``, which turns recursion and --delete
# off): the second half of a staged check, whose first compared all metadata.
CONTENT = (
    "rsync -aHAXx --numeric-ids --dry-run --checksum --ignore-missing-args "
    "--out-format='X2K-DIFF %i %n%L'"
)


@operation()
def key(path: str):
    """
    Make sure the KVM host has its migration key pair (ed25519, no passphrase).

    + path: the private key's path; the public key is ``<path>.pub``

    **Example:**

    .. code:: python

        sync.key(path="/var/lib/xen2kvm/ssh/id_ed25519")
    """
    check_path("path", path)
    if fact(host, File, path=path):
        host.noop(f"{path} already exists")
        return
    yield StringCommand("mkdir -p -m 0700", QuoteString(posixpath.dirname(path)))
    yield StringCommand(
        "ssh-keygen -q -t ed25519 -N '' -C", QuoteString(KEY_COMMENT), "-f", QuoteString(path)
    )


def module_path(root: str) -> str:
    """The module file that serves ``root`` on a source: one per root (a dom0's mounts and
    its own ``/`` never share one), named by the root's digest."""
    digest = hashlib.sha256(root.encode()).hexdigest()[:16]
    return f"{MODULE_DIR}/rsyncd-{digest}.conf"


def forced_command(root: str) -> str:
    """What the migration key runs on the source, whatever the client asks: rsync's daemon
    over the SSH connection, with the module file of ``root``."""
    return f"rsync --server --daemon --config={module_path(root)} ."


def access_line(public_key: str, source_address: str, root: str) -> str:
    """The authorized_keys line: this key, from that address, read-only rsync of ``root``
    (the daemon of ``forced_command``)."""
    options = ",".join(
        [
            f'from="{source_address}"',
            f'command="{forced_command(root)}"',
            "no-pty",
            "no-agent-forwarding",
            "no-port-forwarding",
            "no-X11-forwarding",
        ]
    )
    return f"{options} {public_key.strip()}"


def module_source(user: str, address: str, path: str = "/") -> str:
    """What a copy reads: ``path`` (below the root the key may read, ``/`` for all of it)
    on ``address``, through the daemon of ``access``: ``root@198.51.100.10::x2k/var/``.
    An IPv6 address goes in brackets, as rsync parses it."""
    host = f"[{address}]" if ":" in address else address
    inside = path.strip("/")
    return f"{user}@{host}::{MODULE}/{inside}/" if inside else f"{user}@{host}::{MODULE}/"


def _check_root(root: object) -> str:
    """A root the key may read: absolute, normalised (no ``/./``, which rsyncd.conf reads
    as a chroot split), and nothing the authorized_keys line or the module file would read
    otherwise."""
    if (
        not isinstance(root, str)
        or not root.startswith("/")
        or posixpath.normpath(root) != root
        or not root.isprintable()
        or any(c in root for c in _NOT_IN_ROOT)
    ):
        raise OperationValueError(
            f"root cannot go into an authorized_keys line nor an rsync module: {root!r} "
            "(give an absolute, normalised path without quotes, backslashes, commas, % nor "
            "spaces)"
        )
    return root


def _public_key(key_host: str, key_path: str) -> str | None:
    other = host if key_host == host.name else inventory.get_host(key_host)
    lines = fact(other, FileContents, path=f"{key_path}.pub")
    return lines[0].strip() if lines else None


@operation()
def access(
    key_host: str,
    key_path: str,
    from_address: str,
    root: str = "/",
    present: bool = True,
    authorized_keys: str = "/root/.ssh/authorized_keys",
    tree: str | None = None,
):
    """
    Allow (or stop allowing) a KVM host's migration key to read this host with rsync, and
    nothing else: only from ``from_address``, only rsync's daemon over SSH serving ``root``
    read-only (module ``x2k``, its file in ``/run/xen2kvm``, written again when a reboot
    took it).

    + key_host: the inventory name of the KVM host that holds the key
    + key_path: the private key's path there (its ``.pub`` is read when this runs)
    + from_address: the only address the key may come from (the KVM host's)
    + root: the directory rsync may read (the module's chroot)
    + present: whether the key should be allowed; ``False`` removes its line, and the
      module file once no other key's line runs it
    + authorized_keys: the file to edit (on this host; in ``tree`` when it is given)
    + tree: a migrated guest's tree on this host, whose ``authorized_keys`` (the guest's
      path) is edited: never through a link the guest planted (see ``operations.util.tree``);
      only the line (nothing of a tree is served: no module file)

    **Example:**

    .. code:: python

        sync.access(key_host="kvm1", key_path="/var/lib/xen2kvm/ssh/id_ed25519",
                    from_address="198.51.100.20")
    """
    if not from_address or any(c in from_address for c in "\"'\\ \n,"):
        raise OperationValueError(
            f"from_address cannot go into an authorized_keys line: {from_address!r}"
        )
    _check_root(root)
    check_bool("present", present)
    public_key = _public_key(key_host, key_path)
    if public_key is None:
        if not present:
            host.noop(f"{key_host} has no migration key: nothing to remove")
            return
        if host.state.is_executing:
            raise OperationError(f"{key_host} has no migration key {key_path}.pub")
        # A dry run of a fresh wave: sync.key makes the key earlier in the same run.
        public_key = f"ssh-ed25519 <{key_host}:{key_path}.pub> {KEY_COMMENT}"
    fields = public_key.split()
    if len(fields) < 2 or not fields[0].startswith("ssh-"):
        raise OperationValueError(f"not an SSH public key in {key_host}:{key_path}.pub")
    body = fields[1]
    wanted = access_line(public_key, from_address, root)
    if tree is not None:
        check_path("tree", tree)
        checked(tree, authorized_keys, ("file",))
        authorized_keys = where(tree, relative(authorized_keys))
    lines = fact(host, FileContents, path=authorized_keys) or []
    ours = [line for line in lines if body in line.split()]
    conf, module = module_path(root), render.rsyncd_conf(MODULE, root)
    served = None if tree is not None else fact(host, FileContents, path=conf)
    # The module file: written while the key is allowed (a tree has none), removed with
    # the last line that runs it (another KVM host's key may read the same root).
    shared = any(conf in line for line in lines if body not in line.split())
    write_module = present and tree is None and served != module.splitlines()
    remove_module = not present and served is not None and not shared

    if present and ours == [wanted] and not write_module:
        host.noop(f"the migration key of {key_host} already reads {root} from {from_address}")
        return
    if not present and not ours and not remove_module:
        host.noop(f"the migration key of {key_host} is already not allowed")
        return
    if write_module:  # before the line: the key never runs without its module
        yield from _module_file(conf, module)
    path = QuoteString(authorized_keys)
    temporary = QuoteString(f"{authorized_keys}.xen2kvm-tmp")
    if ours and (not present or ours != [wanted]):
        # The key's base64 holds regex characters: filter it out as a fixed string (grep
        # fails when no line is left); the file written in place (its owner and mode kept).
        yield StringCommand(
            "grep -vF -e", QuoteString(body), path, ">", temporary, "|| true;",
            "cat", temporary, ">", path, "&& rm -f", temporary,
        )  # fmt: skip
    if present and ours != [wanted]:
        yield StringCommand("mkdir -p -m 0700", QuoteString(posixpath.dirname(authorized_keys)))
        yield StringCommand("echo", QuoteString(wanted), ">>", path)
        yield StringCommand("chmod 0600", path)
    if remove_module:  # after the line: no key is left to run it
        yield StringCommand("rm -f", QuoteString(conf))


def _module_file(conf: str, module: str) -> Generator[StringCommand, None, None]:
    """The module file written whole, one ``printf`` argument per line, then moved into
    place (a daemon starting meanwhile reads the old file or the new, never half)."""
    temporary = QuoteString(f"{conf}.xen2kvm-tmp")
    yield StringCommand("mkdir -p -m 0700", QuoteString(posixpath.dirname(conf)))
    yield StringCommand(
        "printf '%s\\n'",
        *[QuoteString(line) for line in module.splitlines()],
        ">",
        temporary,
        "&& mv -f",
        temporary,
        QuoteString(conf),
    )


@operation(is_idempotent=False)
def tree(
    guest: str,
    step: str,
    source: str,
    dest: str,
    ssh_key: str,
    known_hosts: str,
    state_dir: str,
    excludes: list[str] | tuple[str, ...] = (),
    until: str = CUTOVER_COMPLETE,
    converged_below: int | None = None,
    connection: str | None = None,
):
    """
    Copy one filesystem with rsync (``-aHAXx --numeric-ids --delete --sparse``), journaled.

    + guest: the guest (for the journal)
    + step: the journal's name for this copy (``presync:/var``)
    + source: ``user@address::x2k/path/``, the path below the root the key may read
      (``module_source``; through the daemon ``access`` allows)
    + dest: the target directory on this host
    + ssh_key: the migration key
    + known_hosts: the known_hosts file holding the source's host keys
    + state_dir: where the journal lives
    + excludes: paths (relative to the copied tree) rsync must neither copy nor delete
    + until: once this step is in the journal, copying stops (the migration is done)
    + converged_below: copy only if this step's last copy moved this many bytes or more
      (a further warm pass: once a pass moves less, the delta has converged)
    + connection: the control socket of an SSH connection master to the source
      (``ssh.master``): the copy rides on it when it runs, and connects by itself otherwise

    Each rerun sends only the difference. After ``until`` is journaled, it does nothing.

    **Example:**

    .. code:: python

        sync.tree(guest="web1", step="presync:/var", source="root@198.51.100.101::x2k/var/",
                  dest="/var/lib/xen2kvm/target/web1/var/", ssh_key=..., known_hosts=...,
                  state_dir="/var/lib/xen2kvm")
    """
    if not dest.endswith("/") or not source.endswith("/"):
        raise OperationValueError("source and dest must end with / (copy contents)")
    records = fact(host, MigrationJournal, state_dir=state_dir, guest=guest)
    if done(records, until):
        host.noop(f"{guest} is migrated ({until} is in the journal): nothing to copy")
        return
    if converged_below is not None:
        last = [c for c in summarise(records).copies if c.step == step and c.rc == 0]
        if last and (last[-1].bytes or 0) < converged_below:
            host.noop(
                f"{guest}: {step} has converged: its last pass moved {human(last[-1].bytes or 0)}"
                f", under {human(converged_below)}"
            )
            return
    rsync = f"{RSYNC} {CHANGED}" if lists_changes(step) else RSYNC
    ends = _transport(ssh_key, known_hosts, excludes, connection)
    yield _journaled(state_dir, guest, step, "run", rsync, ends, source, dest)


def _journaled(
    state_dir: str,
    guest: str,
    step: str,
    action: str,
    rsync: str,
    ends: str,
    source: str,
    dest: str,
) -> StringCommand:
    """An rsync from the source through the migration key (``ends``: its ``-e`` and
    excludes, ``_transport``), run by ``x2k-journal``."""
    return StringCommand(
        TOOL, QuoteString(state_dir), QuoteString(guest), QuoteString(step), action, rsync,
        ends, QuoteString(source), QuoteString(dest),
    )  # fmt: skip


@operation(is_idempotent=False)
def identical(
    guest: str,
    step: str,
    source: str,
    dest: str,
    ssh_key: str,
    known_hosts: str,
    state_dir: str,
    excludes: list[str] | tuple[str, ...] = (),
    content: bool = True,
    marker: str | None = None,
    source_runs: bool = False,
    since: bool = False,
    connection: str | None = None,
):
    """
    Check a copied filesystem is identical to its source, read-only (an ``rsync
    --dry-run`` of the copy ``sync.tree`` made, itemizing each difference), journaled with
    the number of differences; fails, listing them, when there is any. Run after the final
    copy, before anything in the tree is changed: a difference stops the cutover before
    the new copy starts, with the source still whole.

    + guest: the guest (for the journal)
    + step: the journal's name for this check (``integrity:/var``)
    + source, dest, ssh_key, known_hosts, excludes: as the copy's (see ``sync.tree``)
    + state_dir: where the journal lives
    + content: compare every file's content (``--checksum``: both sides read in full);
      ``False`` compares what rsync's quick check does (size and time) and all metadata
    + marker: a file on this host that splits the check in two (``integrity: staged``):
      with ``source_runs`` it is touched as the check begins; without, the check compares
      all metadata and the content of the regular files whose inode changed since the
      marker was touched (what copies wrote after the check before the downtime), or of
      every file when there is no marker
    + source_runs: the source still runs (the check before the downtime, against the
      guest itself): every file's content is read, and only a content difference under
      the same size and time counts (a copy's quick check would never mend it); what the
      running guest changes meanwhile is said (``X2K-LIVE``), not counted
    + since: with ``source_runs`` and the marker there, read only the content of the
      regular files whose inode changed since the marker (what the copies after that
      check wrote: a catch-up pass's), then move the marker to when this check began,
      unless a difference counted; without the marker, as without ``since``

    Compared: content, size, modification time, permissions, numeric owner and group,
    ACLs, extended attributes (file capabilities), hard links, symbolic links' targets,
    device nodes, FIFOs and sockets, any name rsync can carry (spaces, newlines,
    non-UTF-8), files missing or extra. Not compared: where holes lie in sparse files.

    **Example:**

    .. code:: python

        sync.identical(guest="web1", step="integrity:/var",
                       source="root@198.51.100.10::x2k/web1/var/",
                       dest="/var/lib/xen2kvm/target/web1/var/", ssh_key=...,
                       known_hosts=..., state_dir="/var/lib/xen2kvm")
    """
    if not dest.endswith("/") or not source.endswith("/"):
        raise OperationValueError("source and dest must end with / (compare contents)")
    check_bool("content", content)
    check_bool("source_runs", source_runs)
    check_bool("since", since)
    if since and not (source_runs and marker is not None):
        raise OperationValueError("since goes with source_runs and a marker")
    ends = _transport(ssh_key, known_hosts, excludes, connection)
    if marker is None:
        if source_runs:
            raise OperationValueError("source_runs needs a marker (the check to split)")
        compare = f"{COMPARE} --checksum" if content else COMPARE
        yield _journaled(state_dir, guest, step, "check", compare, ends, source, dest)
        return
    check_path("marker", marker)
    if not content:
        raise OperationValueError("a marker splits a content check: give content=True")
    if since:
        script = _caught_up_script(marker, ends, source, dest)
    elif source_runs:
        script = _before_script(marker, ends, source, dest)
    else:
        script = _since_script(marker, ends, source, dest)
    yield StringCommand(
        TOOL, QuoteString(state_dir), QuoteString(guest), QuoteString(step), "check",
        "sh -c", QuoteString(script), "x2k-integrity",
    )  # fmt: skip


# The check before the downtime, against the running guest: the differences that count
# are a regular file's content under the same size and time; the rest is said as
# X2K-LIVE (the guest changes it meanwhile; the first 20, then how many more). rsync's 24:
# files vanished while read.
_LIVE = (
    'awk \'/^X2K-DIFF / && substr($2, 1, 3) == ">fc" && substr($2, 4, 2) == ".." '
    '{ print; next } /^X2K-DIFF / { if (++n <= 20) { sub(/^X2K-DIFF /, "X2K-LIVE "); '
    'print } next } { print } END { if (n > 20) print "X2K-LIVE and " n - 20 " more" }\''
)


def _before_script(marker: str, ends: str, source: str, dest: str) -> str:
    q = shlex.quote
    return "\n".join(
        [
            "set -u",
            f"mkdir -p {q(posixpath.dirname(marker))} && touch {q(marker)} || exit 1",
            "o=$(mktemp) || exit 1; trap 'rm -f \"$o\"' EXIT",
            f'{COMPARE} --checksum {ends} {q(source)} {q(dest)} > "$o"; rc=$?',
            f'{_LIVE} "$o"',
            '[ "$rc" -eq 24 ] && rc=0',
            'exit "$rc"',
        ]
    )


def _changed_since(marker: str, dest: str) -> str:
    """The regular files of the tree at ``dest`` whose inode changed since ``marker`` was
    touched, NUL-separated (names read from the tree go to rsync through a file, never
    through a shell)."""
    q = shlex.quote
    return f"(cd {q(dest)} && find . -xdev -type f -cnewer {q(marker)} -print0)"


def _caught_up_script(marker: str, ends: str, source: str, dest: str) -> str:
    """Against the running source, the content of the regular files whose inode changed
    since the marker, the differences that count as ``_before_script``'s; the marker moved
    to when this began only when none counted (else the next check would not read them
    again). Without the marker: ``_before_script``."""
    q = shlex.quote
    changed = _changed_since(marker, dest)
    whole = "\n".join(
        "    " + line for line in _before_script(marker, ends, source, dest).split("\n")
    )
    return "\n".join(
        [
            "set -u",
            f"if [ ! -e {q(marker)} ]; then",
            whole,
            "fi",
            "o=$(mktemp) || exit 1",
            f"next={q(marker + '.next')}",
            'trap \'rm -f "$o" "$o.out" "$next"\' EXIT',
            'touch "$next" || exit 1',
            f'{changed} > "$o" || exit 1',
            'echo "X2K-CONTENT $(tr -cd \'\\000\' < "$o" | wc -c) files changed since the last'
            ' check, against the running source"',
            f'{CONTENT} --files-from="$o" --from0 {ends} {q(source)} {q(dest)} > "$o.out"; rc=$?',
            f'{_LIVE} "$o.out" > "$o"',
            'cat "$o"',
            '[ "$rc" -eq 24 ] && rc=0',
            '[ "$rc" -eq 0 ] && ! grep -q \'^X2K-DIFF \' "$o" &&',
            f'    {{ mv "$next" {q(marker)} || exit 1; }}',
            'exit "$rc"',
        ]
    )


def _since_script(marker: str, ends: str, source: str, dest: str) -> str:
    """All metadata, and alongside it (in the background: the window waits for the longer
    of the two walks, not their sum) the content of the regular files whose inode changed
    since the marker (names read from the tree go to rsync through a file, NUL-separated:
    never through a shell). The content's answer counts only once the metadata shows no
    difference. --ignore-missing-args: the tree's own files (excluded) are no source's.
    Without the marker, the content of every file, once the metadata shows no difference."""
    q = shlex.quote
    changed = _changed_since(marker, dest)
    return "\n".join(
        [
            "set -u",
            "o=$(mktemp) && c=$(mktemp) && l=$(mktemp) || exit 1",
            'trap \'rm -f "$o" "$c" "$l"\' EXIT',
            "staged=false",
            f"if [ -e {q(marker)} ]; then",
            "    staged=true",
            f'    {{ {changed} > "$l" &&',
            '      echo "X2K-CONTENT $(tr -cd \'\\000\' < "$l" | wc -c) files changed since the'
            ' check before the downtime" &&',
            f'      {CONTENT} --files-from="$l" --from0 {ends} {q(source)} {q(dest)}; }} > "$c" &',
            "    content=$!",
            "fi",
            f'{COMPARE} {ends} {q(source)} {q(dest)} > "$o"; rc=$?; cat "$o"',
            'crc=0; "$staged" && { wait "$content"; crc=$?; }',
            '[ "$rc" -eq 0 ] || exit "$rc"',
            "grep -q '^X2K-DIFF ' \"$o\" && exit 0",
            'if "$staged"; then',
            '    cat "$c"',
            '    exit "$crc"',
            "fi",
            'echo "X2K-CONTENT no check before the downtime: every file"',
            f"{COMPARE} --checksum {ends} {q(source)} {q(dest)}",
        ]
    )


def _transport(
    ssh_key: str,
    known_hosts: str,
    excludes: list[str] | tuple[str, ...],
    connection: str | None = None,
) -> str:
    """rsync's ``-e 'ssh ...'`` (the migration key, the source's own host keys: over it,
    the source's daemon that ``access`` allows; riding on the master at ``connection``
    when one runs there) and its excludes, quoted for a shell: what every copy and check
    of a source shares."""
    shared = []
    if connection is not None:
        shared = ssh.client_options(check_path("connection", connection, "file path"))
    command = " ".join(
        [
            "ssh",
            "-i",
            shlex.quote(ssh_key),
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            shlex.quote(f"UserKnownHostsFile={known_hosts}"),
            *[shlex.quote(option) for option in shared],
        ]
    )
    bits = ["-e", shlex.quote(command)]
    for exclude in excludes:
        bits += ["--exclude", shlex.quote(exclude)]
    return " ".join(bits)
