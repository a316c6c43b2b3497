"""The migration key's read-only rsync daemon (``sync.access``), run here with the real
rsync and no SSH (``tests/unit/rsync_daemon.py``): the module file the operation writes,
the forced command of its authorized_keys line; a copy through it keeps what a guest
holds, nothing can be written through it and nothing outside its root read; the
integrity checks of ``sync.identical`` run through it as through SSH.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from operations.sync import (
    COMPARE,
    MODULE,
    RSYNC,
    _before_script,
    _since_script,
    forced_command,
    module_path,
    module_source,
)
from tests.unit.rsync_daemon import access, held, rsync, run, serving
from tests.unit.test_integrity_rsync import build, same_time
from xen2kvm import render

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("rsync") or not shutil.which("setfacl"),
    reason="needs root (the module chroots, runs as uid 0), rsync and setfacl (apt: acl)",
)

SECRET = b"outside the root: never read through the key\n"
DECOY = b"the root's own file of that name\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """What the key may read, with a secret beside it (outside it), and a file of the same
    name inside it."""
    (tmp_path / "secret").write_bytes(SECRET)
    served = tmp_path / "served"
    (served / "sub").mkdir(parents=True)
    (served / "secret").write_bytes(DECOY)
    return served


@pytest.fixture
def rsh(root: Path, tmp_path: Path) -> Iterator[Path]:
    with serving(root, tmp_path) as shell:
        yield shell


def source(path: str) -> str:
    """A directory below the root, as the copies name it (``root@...::x2k/path/``)."""
    return module_source("root", "198.51.100.10", path)


def named(path: str) -> str:
    """A path below the root as given, no slash added (a file, or ``..`` left in)."""
    return f"root@198.51.100.10::{MODULE}{path}"


def listing(top: Path) -> list[tuple[str, int, int, int]]:
    """Every name below ``top`` with its mode, size and time (what a write would change)."""
    found = []
    for directory, dirs, files in os.walk(top):
        for name in dirs + files:
            info = os.lstat(os.path.join(directory, name))
            found.append((os.path.relpath(os.path.join(directory, name), top), info.st_mode,
                          info.st_size, info.st_mtime_ns))  # fmt: skip
    return sorted(found)


# The module ----------------------------------------------------------------------------


def test_the_key_runs_the_daemon_on_the_module_file_written_from_the_template(root, tmp_path):
    with serving(root, tmp_path):
        line = (tmp_path / "authorized_keys").read_text()
        assert f'command="{forced_command(str(root))}"' in line
        assert forced_command(str(root)) == (
            f"rsync --server --daemon --config={module_path(str(root))} ."
        )
        assert Path(module_path(str(root))).read_text() == render.rsyncd_conf(MODULE, str(root))


def test_a_second_run_over_what_it_wrote_does_nothing(root, tmp_path):
    with serving(root, tmp_path):
        assert access(root, tmp_path / "authorized_keys") == (
            [],
            f"the migration key of testhost already reads {root} from 198.51.100.20",
        )


def test_a_module_file_a_reboot_took_is_written_again_and_served(root, rsh, tmp_path):
    (root / "sub/file").write_text("read after the reboot\n")
    os.unlink(module_path(str(root)))  # /run emptied by the reboot; the line stays
    commands, _ = access(root, tmp_path / "authorized_keys")
    assert [command.split()[0] for command in commands] == ["mkdir", "printf"]
    run(commands)
    done = rsync("-a", named("/sub/file"), tmp_path / "got", rsh=rsh)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "got").read_text() == "read after the reboot\n"


def test_removing_the_access_takes_the_line_and_the_module_file(root, tmp_path):
    with serving(root, tmp_path):
        pass
    assert held(module_path(str(root))) is None
    assert (tmp_path / "authorized_keys").read_text() == ""


# What a copy through it carries --------------------------------------------------------


@pytest.fixture
def copied(root: Path, rsh: Path, tmp_path: Path) -> Path:
    sub = root / "sub"
    (sub / "file").write_text("a file\n")
    os.link(sub / "file", sub / "hard")
    (sub / "su").write_bytes(b"\x7fELF a setuid program\n")
    os.chmod(sub / "su", 0o4755)  # noqa: S103 (a setuid program: its bit must survive)
    os.symlink("/rsyncd-munged/etc/passwd", sub / "munged-looking")
    os.symlink("/etc/passwd", sub / "absolute")
    (sub / "private").mkdir(mode=0o700)
    (sub / "private/shadow").write_text("root:*:19000:0:99999:7:::\n")
    os.chmod(sub / "private/shadow", 0o600)
    dest = tmp_path / "dest"
    done = rsync("-aHAX", "--numeric-ids", source("/sub"), f"{dest}/", rsh=rsh)
    assert done.returncode == 0, done.stderr
    return dest


def test_a_link_whose_text_starts_with_rsyncd_munged_arrives_unchanged(copied):
    assert os.readlink(copied / "munged-looking") == "/rsyncd-munged/etc/passwd"
    assert os.readlink(copied / "absolute") == "/etc/passwd"


def test_a_file_only_root_may_read_is_read(copied):
    # uid 0 in the module: a daemon started as root would otherwise read as nobody.
    assert (copied / "private/shadow").read_text() == "root:*:19000:0:99999:7:::\n"


def test_hard_links_and_a_setuid_bit_survive(copied):
    assert os.stat(copied / "file").st_ino == os.stat(copied / "hard").st_ino
    assert (copied / "hard").read_text() == "a file\n"
    assert stat.S_IMODE(os.stat(copied / "su").st_mode) == 0o4755


# Nothing written, nothing outside read -------------------------------------------------


def writes(tmp_path: Path) -> dict[str, list[str | Path]]:
    """rsync's arguments for each way to change the root through the key."""
    upload, empty = tmp_path / "upload", tmp_path / "empty"
    upload.write_text("sent by the key\n")
    empty.mkdir()
    return {
        "upload": ["-a", upload, source("/")],
        "upload into a directory": ["-a", upload, source("/sub")],
        "delete what the source lacks": ["-a", "--delete", f"{empty}/", source("/sub")],
        "remove the files sent": ["-a", "--remove-source-files", named("/sub/kept"), tmp_path],
    }


@pytest.mark.parametrize(
    "way",
    ["upload", "upload into a directory", "delete what the source lacks", "remove the files sent"],
)
def test_nothing_can_be_written_through_it(root, rsh, tmp_path, way):
    (root / "sub/kept").write_text("stays\n")
    before = listing(root)
    done = rsync(*writes(tmp_path)[way], rsh=rsh)
    assert done.returncode != 0, done
    assert listing(root) == before


@pytest.mark.parametrize("path", ["/../secret", "/sub/../../secret"])
def test_dot_dot_stops_at_the_root(root, rsh, tmp_path, path):
    """The chroot: above the root is the root itself (its own file of that name is read)."""
    done = rsync("-a", named(path), tmp_path / "got", rsh=rsh)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "got").read_bytes() == DECOY


def test_an_absolute_path_outside_the_root_reads_nothing(root, rsh, tmp_path):
    outside = named(f"/../../../../../..{tmp_path / 'secret'}")
    done = rsync("-a", outside, tmp_path / "got", rsh=rsh)
    assert done.returncode != 0, done
    assert not (tmp_path / "got").exists()


def test_a_link_followed_resolves_inside_the_root(root, rsh, tmp_path):
    """With the chroot, even a link the client asks to follow (``-L``) stays inside."""
    os.symlink(tmp_path / "secret", root / "sub/absolute")  # the secret, named in full
    os.symlink("../../secret", root / "sub/relative")  # above the root: the root's own
    dest = tmp_path / "dest"
    rsync("-aL", source("/sub"), f"{dest}/", rsh=rsh)  # absolute has no referent in it
    assert not (dest / "absolute").exists()
    assert (dest / "relative").read_bytes() == DECOY


# The integrity checks through it -------------------------------------------------------


@pytest.fixture
def guest(root: Path, rsh: Path, tmp_path: Path) -> tuple[Path, Path, str]:
    """A guest's tree of every kind (``test_integrity_rsync.build``) in the root, copied
    through the daemon with the tool's own flags; the copy, and the remote shell as the
    checks' ``-e``."""
    build(root / "web1")
    dest = tmp_path / "dest"
    dest.mkdir()
    done = subprocess.run(
        [*shlex.split(RSYNC), "-e", str(rsh), source("/web1"), f"{dest}/"],
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return root / "web1", dest, f"-e {shlex.quote(str(rsh))}"


def differences(script: str) -> tuple[int, list[bytes]]:
    done = subprocess.run(["sh", "-c", script, "x2k-integrity"], capture_output=True, check=False)
    lines = done.stdout.splitlines()
    return done.returncode, [line for line in lines if line.startswith(b"X2K-DIFF ")]


def test_compare_finds_a_copy_through_the_daemon_identical(guest):
    _, dest, ends = guest
    assert differences(f"{COMPARE} --checksum {ends} {source('/web1')} {dest}/") == (0, [])


def test_compare_finds_a_content_difference_through_the_daemon(guest):
    _, dest, ends = guest
    path = dest / "etc/passwd"
    same_time(path, lambda: path.write_text("root:x:0:0:root:/root:/bin/XX\n"))
    assert differences(f"{COMPARE} --checksum {ends} {source('/web1')} {dest}/") == (
        0,
        [b"X2K-DIFF >fc........ etc/passwd"],
    )


def test_the_staged_check_reads_the_files_from_list_through_the_daemon(guest, tmp_path):
    """Both halves of ``integrity: staged``: before, every content against the running
    source; then the content of the files changed since (``--files-from``) caught."""
    _, dest, ends = guest
    marker = tmp_path / "checked/web1/integrity-before::"
    assert differences(_before_script(str(marker), ends, source("/web1"), f"{dest}/")) == (0, [])
    assert marker.is_file()
    # Every file then counts as changed since the check before (in a timestamp tick of its
    # own, the change could not be told from it): the whole list goes through the daemon.
    os.utime(marker, (0, 0))
    path = dest / "srv/acl"
    same_time(path, lambda: path.write_bytes(path.read_bytes().swapcase()))
    assert differences(_since_script(str(marker), ends, source("/web1"), f"{dest}/")) == (
        0,
        [b"X2K-DIFF >fc........ srv/acl"],
    )
