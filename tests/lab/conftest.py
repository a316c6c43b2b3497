"""The lab fleet for tests: brought up once per session (idempotent) and left up.

``XEN2KVM_SKIP_LAB=1`` skips every test that needs it. ``XEN2KVM_LAB_UP_ARGS`` adds
arguments to ``xen2kvm lab up`` (e.g. ``--no-kvm`` for the Xen side only).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

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


@pytest.fixture(scope="session")
def lab() -> LabConfig:
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    extra = os.environ.get("XEN2KVM_LAB_UP_ARGS", "").split()
    subprocess.run([*LAB_CLI, "up", *extra], check=True)
    return LabConfig.from_env()


@pytest.fixture(scope="session")
def lab_fleet() -> fleet.Fleet:
    return fleet.load()


Ssh = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def ssh(lab: LabConfig, lab_fleet: fleet.Fleet) -> Ssh:
    """``ssh(host, command)``: real SSH from inside the lab network, strict host keys."""

    def _ssh(host: str, command: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        address = lab_fleet.host(host).address
        return subprocess.run(
            orchestrate.ssh_command(lab, address, command),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return _ssh
