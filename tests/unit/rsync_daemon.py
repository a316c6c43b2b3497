"""The migration key's read-only rsync daemon, served here for real without SSH: the
commands of ``sync.access`` (decided from the facts of this machine's own files, as
pyinfra would read them) run as root, and a remote shell for rsync's ``-e`` that, whatever
rsync asks it, runs the forced command of the key's authorized_keys line, as sshd does
(``sh -c``). Leaving, ``sync.access(present=False)`` runs the same way."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from operations.sync import MODULE_DIR, module_path
from tests.harness import run_operation

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFx+/b9Q2mEXAMPLEKEYFORTESTS0000000000000000 x2k"
FROM = "198.51.100.20"
FORCED = re.compile(r'command="([^"]*)"')


def held(path: Path | str) -> list[str] | None:
    """The FileContents fact of a file here: its lines, or None when there is none."""
    path = Path(path)
    return path.read_text().splitlines() if path.exists() else None


def access(root: Path, keys: Path, present: bool = True) -> tuple[list[str], str | None]:
    """``sync.access``'s commands for ``root``, editing ``keys``, from what the files here
    hold; and its noop description."""
    conf = module_path(str(root))
    case = {
        "kwargs": {
            "key_host": "testhost",
            "key_path": "/k/id",
            "from_address": FROM,
            "root": str(root),
            "present": present,
            "authorized_keys": str(keys),
        },
        "facts": {
            "files.FileContents": {
                "path=/k/id.pub": [KEY],
                f"path={keys}": held(keys),
                f"path={conf}": held(conf),
            }
        },
    }
    commands, host = run_operation("sync.access", case)
    return commands, host.noop_description


def run(commands: list[str]) -> None:
    for command in commands:
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"{command}: {done.stderr}"


@contextmanager
def serving(root: Path, where: Path) -> Iterator[Path]:
    """``root`` served as ``sync.access`` serves it; the remote shell to give rsync's
    ``-e`` (in ``where``, beside the authorized_keys file). Taken away on leaving."""
    keys = where / "authorized_keys"
    made_dir = not os.path.isdir(MODULE_DIR)
    commands, _ = access(root, keys)
    run(commands)
    forced = FORCED.search(keys.read_text())
    assert forced, keys.read_text()
    rsh = where / "rsh"
    rsh.write_text(
        "#!/bin/sh\n# Whatever rsync asks (host, user, command), the key's forced command.\n"
        f"exec sh -c {shlex.quote(forced[1])}\n"
    )
    rsh.chmod(0o755)
    try:
        yield rsh
    finally:
        commands, _ = access(root, keys, present=False)
        run(commands)
        if made_dir:
            with suppress(OSError):  # another module file came meanwhile: it stays
                os.rmdir(MODULE_DIR)


def rsync(*args: str | Path, rsh: Path) -> subprocess.CompletedProcess[bytes]:
    """rsync with the remote shell ``rsh``: a source ``user@host::x2k/...`` reaches the
    daemon (host and user are the shell's, which ignores them)."""
    return subprocess.run(
        ["rsync", "-e", str(rsh), *map(str, args)], capture_output=True, check=False
    )
