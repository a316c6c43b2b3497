"""The integrity check's comparison (``operations.sync.COMPARE``), run here with the real
rsync between two local trees: a faithful copy shows no difference, and a deliberate
difference of each kind is caught, as exactly one line naming it.

The trees hold every kind of file the check must carry: content, modes, owners with no name
on this host, ACLs, xattrs (a file capability), hard links, symbolic links, device nodes,
FIFOs, sockets, names with spaces, newlines and bytes that are not UTF-8, a sparse file.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from operations.sync import COMPARE, RSYNC

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("setfacl"),
    reason="needs root (owners, device nodes, capabilities) and setfacl (apt: acl)",
)

UNNAMED = 48213  # no user nor group of this number on the host
CAPABILITY = bytes.fromhex("0100000200200000000000000000000000000000")  # cap_net_raw+ep
ODD = ("with space", "new\nline", b"latin1-\xe9t\xe9")


def build(root: Path) -> None:
    """A source tree with one of each kind."""
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "bin").mkdir()
    ping = root / "bin/ping"
    ping.write_bytes(b"\x7fELF not really ping")
    ping.chmod(0o755)
    os.setxattr(ping, "security.capability", CAPABILITY)
    os.setxattr(root / "etc/passwd", "user.note", b"kept")
    (root / "srv").mkdir()
    owned = root / "srv/owned"
    owned.write_text("a file of a uid the KVM host does not know\n")
    os.chown(owned, UNNAMED, UNNAMED)
    acl = root / "srv/acl"
    acl.write_text("readable by one more user\n")
    subprocess.run(["setfacl", "-m", f"u:{UNNAMED}:r", str(acl)], check=True)
    (root / "srv/linked-a").write_text("one inode, two names\n")
    os.link(root / "srv/linked-a", root / "srv/linked-b")
    os.symlink("../etc/passwd", root / "srv/link")
    os.mknod(root / "srv/null", 0o600 | 0o020000, os.makedev(1, 3))  # a character device
    os.mkfifo(root / "srv/fifo")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "srv/socket"))
    for name in ODD:
        raw = name if isinstance(name, bytes) else name.encode()
        with open(os.path.join(bytes(root / "srv"), raw), "wb") as out:
            out.write(b"odd name\n")
    with open(root / "srv/sparse", "wb") as out:
        out.truncate(64 * 1024 * 1024)
        out.write(b"data at the start of a 64 MiB hole\n")


def rsync(command: str, source: Path, dest: Path) -> subprocess.CompletedProcess[bytes]:
    # The flags as the tool runs them; locally, without the ssh transport.
    line = f"{command} {source}/ {dest}/"
    return subprocess.run(["sh", "-c", line], capture_output=True, check=False)


def differences(source: Path, dest: Path, content: bool = True) -> list[bytes]:
    result = rsync(f"{COMPARE} --checksum" if content else COMPARE, source, dest)
    assert result.returncode == 0, result.stderr
    return [line for line in result.stdout.splitlines() if line.startswith(b"X2K-DIFF ")]


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    source, dest = tmp_path / "source", tmp_path / "dest"
    build(source)
    dest.mkdir()
    copied = rsync(RSYNC, source, dest)
    assert copied.returncode == 0, copied.stderr
    return source, dest


def test_a_faithful_copy_has_no_difference(trees):
    source, dest = trees
    assert differences(source, dest) == []
    assert os.getxattr(dest / "bin/ping", "security.capability") == CAPABILITY
    assert os.stat(dest / "srv/linked-a").st_ino == os.stat(dest / "srv/linked-b").st_ino
    assert os.stat(dest / "srv/sparse").st_blocks * 512 < 1024 * 1024, "the hole stays a hole"


def same_time(path: Path, change: Callable[[], None]) -> None:
    """Change a file, then give it back its time (only its content tells it changed)."""
    before = os.stat(path, follow_symlinks=False)
    change()
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns), follow_symlinks=False)


def content(dest: Path) -> None:
    path = dest / "etc/passwd"
    same_time(path, lambda: path.write_text("root:x:0:0:root:/root:/bin/XX\n"))


def relink(dest: Path) -> None:
    """linked-b a file of its own, same content, time and mode: only the link is gone."""
    path = dest / "srv/linked-b"
    spare = dest / "srv/linked-b.new"
    shutil.copy2(path, spare)
    spare.replace(path)


def retarget(dest: Path) -> None:
    path = dest / "srv/link"
    before = os.lstat(path)
    path.unlink()
    os.symlink("../etc/shadow", path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns), follow_symlinks=False)


def renumber(dest: Path) -> None:
    path = dest / "srv/null"
    same_time(path, lambda: (path.unlink(), os.mknod(path, 0o600 | 0o020000, os.makedev(1, 5))))


def odd_name_lost(dest: Path) -> None:
    os.unlink(os.path.join(bytes(dest / "srv"), b"new\nline"))


# kind: (what changes in the copy, the itemized line's name, caught by metadata alone)
KINDS: dict[str, tuple[Callable[[Path], None], bytes, bool]] = {
    "content, same size and time": (content, b"etc/passwd", False),
    "mode": (lambda d: (d / "bin/ping").chmod(0o700), b"bin/ping", True),
    "owner": (lambda d: os.chown(d / "etc/passwd", UNNAMED, -1), b"etc/passwd", True),
    "group": (lambda d: os.chown(d / "srv/owned", -1, 0), b"srv/owned", True),
    "acl": (
        lambda d: subprocess.run(["setfacl", "-b", str(d / "srv/acl")], check=True),
        b"srv/acl",
        True,
    ),
    "xattr": (lambda d: os.removexattr(d / "etc/passwd", "user.note"), b"etc/passwd", True),
    "file capability": (
        lambda d: os.removexattr(d / "bin/ping", "security.capability"),
        b"bin/ping",
        True,
    ),
    "hard link": (relink, b"srv/linked-b", True),
    "symlink target": (retarget, b"srv/link", True),
    "device number": (renumber, b"srv/null", True),
    "fifo replaced": (
        lambda d: ((d / "srv/fifo").unlink(), (d / "srv/fifo").write_text("")),
        b"srv/fifo",
        True,
    ),
    "socket missing": (lambda d: (d / "srv/socket").unlink(), b"srv/socket", True),
    "odd name missing": (odd_name_lost, b"srv/new\\#012line", True),
    "extra file": (lambda d: (d / "srv/extra").write_text("x\n"), b"srv/extra", True),
    "modification time": (
        lambda d: os.utime(d / "srv/owned", (1, 1), follow_symlinks=False),
        b"srv/owned",
        True,
    ),
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_difference_of_each_kind_is_caught(trees, kind):
    source, dest = trees
    change, name, by_metadata = KINDS[kind]
    # A name added or removed changes its directory's time too (a difference of its own,
    # caught as "modification time"): the directories get theirs back.
    times = {d: os.stat(d).st_mtime_ns for d in (dest / "etc", dest / "bin", dest / "srv")}
    change(dest)
    for directory, mtime in times.items():
        os.utime(directory, ns=(mtime, mtime))
    found = differences(source, dest)
    # "X2K-DIFF " then rsync's 11-character itemized change, a space, the name
    assert len(found) == 1 and found[0][len(b"X2K-DIFF ") + 12 :].startswith(name), found
    # Without --checksum (integrity: metadata) only a same-size, same-time content
    # change goes unseen.
    assert bool(differences(source, dest, content=False)) == by_metadata, kind
