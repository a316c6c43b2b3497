"""The lab fleet for tests: brought up once per session (idempotent) and left up.

``XEN2KVM_SKIP_LAB=1`` skips every test that needs it. ``XEN2KVM_LAB_UP_ARGS`` adds
arguments to ``xen2kvm lab up`` (e.g. ``--no-kvm`` for the Xen side only).

When a run selects lab tests, ``xen2kvm lab up`` starts in the background as soon as the
tests are collected (``tests/conftest.py`` runs the tests that need no lab first, beside
it: on a fresh machine the lab's build takes minutes); the first fixture that needs the
lab waits for it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from xen2kvm.lab import fleet, orchestrate
from xen2kvm.lab.config import LabConfig

LAB_CLI = [sys.executable, "-m", "xen2kvm.lab.cli", "lab"]


def lab_skip_reason() -> str | None:
    if os.environ.get("XEN2KVM_SKIP_LAB") == "1":
        return "XEN2KVM_SKIP_LAB=1"
    if os.geteuid() != 0:
        return "the lab needs root"
    return None


def _up_command() -> list[str]:
    return [*LAB_CLI, "up", *os.environ.get("XEN2KVM_LAB_UP_ARGS", "").split()]


class BackgroundUp:
    """``xen2kvm lab up`` running beside the tests, its output in a log file."""

    def __init__(self) -> None:
        log = tempfile.NamedTemporaryFile(  # noqa: SIM115 (kept for the whole session)
            prefix="x2k-lab-up-", suffix=".log", delete=False
        )
        self.log = Path(log.name)
        with log:
            self.process = subprocess.Popen(
                _up_command(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait(self) -> None:
        """Until it ends; fails the waiting fixture with its output if it failed."""
        code = self.process.wait()
        if code != 0:
            output = self.log.read_text(errors="replace")[-6000:]
            pytest.fail(f"xen2kvm lab up failed (exit {code}), its output ({self.log}):\n{output}")

    def stop(self) -> None:
        """At the end of the session: one still running (the run was cut short) is ended."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.unlink(missing_ok=True)


BACKGROUND_UP = pytest.StashKey[BackgroundUp]()


def start_lab_up(config: pytest.Config) -> BackgroundUp:
    """Start ``lab up`` in the background for this session (``tests/conftest.py``)."""
    config.stash[BACKGROUND_UP] = started = BackgroundUp()
    return started


def stop_lab_up(config: pytest.Config) -> None:
    started = config.stash.get(BACKGROUND_UP, None)
    if started is not None:
        started.stop()


def wait_for_lab_up(config: pytest.Config) -> bool:
    """Wait for the background ``lab up`` of this session; False if none was started."""
    started = config.stash.get(BACKGROUND_UP, None)
    if started is None:
        return False
    started.wait()
    return True


@pytest.fixture(scope="session")
def lab(request: pytest.FixtureRequest) -> LabConfig:
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    if not wait_for_lab_up(request.config):
        subprocess.run(_up_command(), check=True)
    return LabConfig.from_env()


@pytest.fixture(scope="session")
def lab_fleet() -> fleet.Fleet:
    return fleet.load()


Ssh = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def ssh(lab: LabConfig, lab_fleet: fleet.Fleet) -> Iterator[Ssh]:
    """``ssh(host, command)``: real SSH from inside the lab network, strict host keys.

    One connection per host serves the session's commands (``orchestrate.ssh_command``'s
    ``control_dir``): the tests read kvm1's journals hundreds of times, and each login to
    an emulated host costs seconds. A command that finds its host's connection gone (the
    host was stopped, rebooted or migrated since) fails with 255 and runs once more over a
    new one, as a plain ssh would have from the start.
    """
    control = Path(tempfile.mkdtemp(prefix="x2k-ssh-", dir="/tmp"))  # short: a socket path

    def _ssh(host: str, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        address = lab_fleet.host(host).address
        for shared in (control, None):  # the shared connection, then a connection of its own
            argv = orchestrate.ssh_command(lab, address, command, control_dir=shared)
            result = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout, check=False
            )
            if result.returncode != 255:
                break
        return result

    yield _ssh
    for socket in control.iterdir():
        subprocess.run(
            ["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "lab"],
            capture_output=True,
            check=False,
        )
    shutil.rmtree(control, ignore_errors=True)
