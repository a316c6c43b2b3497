"""``lab down`` leaves nothing behind: checked on a separate, throwaway lab instance.

The instance has its own prefix and directory under /tmp and reuses the build cache (and
the operator key the cached images were built for) of the session's lab, so it starts in
seconds. Only the Xen side is started (``--no-kvm``): the KVM side has its own teardown.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.conftest import LAB_CLI
from xen2kvm.lab.config import LabConfig

pytestmark = pytest.mark.lab

PREFIX = "x2kt"


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XEN2KVM_LAB_DIR": str(root), "XEN2KVM_LAB_PREFIX": PREFIX}
    return subprocess.run([*LAB_CLI, *args], env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def downed(lab: LabConfig) -> Iterator[dict[str, object]]:
    """Up a throwaway instance, record what ran, take it down twice."""
    root = Path(tempfile.mkdtemp(prefix="x2kt-", dir="/tmp"))
    (root / "cache").symlink_to(lab.cache)
    shutil.copytree(lab.keys, root / "keys")
    try:
        up = _cli(root, "up", "--no-kvm")
        assert up.returncode == 0, up.stdout + up.stderr
        # The machine loses the lab's processes (a reboot; here SIGKILL) while its run
        # files stay, legacy2 linked on xen2 too as its rehome leaves it: up again.
        for pid in _pids(root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        xen1, xen2 = root / "run/xen1/upper/etc/xen", root / "run/xen2/upper/etc/xen"
        shutil.copy(xen1 / "legacy2.cfg", xen2 / "legacy2.cfg")
        (xen2 / "auto/legacy2.cfg").symlink_to("/etc/xen/legacy2.cfg")
        stale = _cli(root, "up", "--no-kvm")
        ran = {"pids": _pids(root)}
        down = _cli(root, "down")
        again = _cli(root, "down")
        yield {"root": root, "stale": stale, "down": down, "again": again, **ran}
    finally:
        _cli(root, "down")
        (root / "cache").unlink()
        shutil.rmtree(root, ignore_errors=True)


def _pids(root: Path) -> list[int]:
    return [int(p.read_text()) for p in (root / "pids").glob("*.pid")]


def _lines(cmd: list[str]) -> list[str]:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()


def test_up_over_a_lab_whose_processes_are_gone_starts_afresh(
    downed: dict[str, object],
) -> None:
    """Its run files are cleared first: legacy2 starts on its home dom0 only."""
    stale = downed["stale"]
    assert isinstance(stale, subprocess.CompletedProcess)
    said = stale.stdout + stale.stderr
    assert stale.returncode == 0, said
    assert "its processes gone: cleared as `lab down` does" in said, said
    assert "xen1: xendomains: legacy2 created" in said, said
    assert "xen2: xendomains: /etc/xen/auto holds nothing" in said, said


def test_down_succeeds(downed: dict[str, object]) -> None:
    down = downed["down"]
    assert isinstance(down, subprocess.CompletedProcess) and down.returncode == 0, down


def test_down_twice_is_harmless(downed: dict[str, object]) -> None:
    again = downed["again"]
    assert isinstance(again, subprocess.CompletedProcess) and again.returncode == 0, again


def test_instance_had_processes_to_stop(downed: dict[str, object]) -> None:
    assert downed["pids"]


def test_no_process_left(downed: dict[str, object]) -> None:
    root = str(downed["root"]).encode()
    left = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if root in (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes():
                    left.append(proc.name)
            except OSError:
                continue
    assert left == []


def test_recorded_pids_are_gone(downed: dict[str, object]) -> None:
    pids = downed["pids"]
    assert isinstance(pids, list)
    alive = [p for p in pids if Path(f"/proc/{p}").exists() and "Z" not in _state(p)]
    assert alive == []


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def test_no_mount_left(downed: dict[str, object]) -> None:
    assert [
        m for m in Path("/proc/mounts").read_text().splitlines() if str(downed["root"]) in m
    ] == []


def test_no_loop_device_left(downed: dict[str, object]) -> None:
    assert [line for line in _lines(["losetup", "-a"]) if str(downed["root"]) in line] == []


def test_no_namespace_left(downed: dict[str, object]) -> None:
    assert [n for n in _lines(["ip", "netns", "list"]) if n.startswith(f"{PREFIX}-")] == []


def test_no_veth_left_in_host_namespace(downed: dict[str, object]) -> None:
    assert [line for line in _lines(["ip", "-o", "link"]) if "vh-" in line] == []


def test_run_dir_removed(downed: dict[str, object]) -> None:
    assert not (Path(str(downed["root"])) / "run").exists()


def test_nothing_of_the_session_lab_touched(lab: LabConfig, downed: dict[str, object]) -> None:
    assert (
        subprocess.run(
            [
                sys.executable,
                "-c",
                "import os,sys; sys.exit(not os.path.exists(sys.argv[1]))",
                f"/run/netns/{lab.netns}",
            ],
            check=False,
        ).returncode
        == 0
    )
