"""The per-guest lock on the lab: a run over a guest that another run holds is refused
before it changes anything, with the holder and how to clear it; a lock left by a run of
this controller that no longer runs is taken over.

The tests need a guest that is not migrated yet (a migrated guest is never locked): the
first such guest of the lab, or, when every guest is migrated, a pristine lab (lab down,
lab up: about a minute with the cached images).
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable, Iterator

import pytest

from tests.lab.conftest import LAB_CLI, Ssh
from tests.lab.runs import migrated, pyinfra, reset_lab, text
from xen2kvm.lab import fleet
from xen2kvm.lab.config import LabConfig

pytestmark = [pytest.mark.lab, pytest.mark.slow]

LOCKS = "/var/lib/xen2kvm/locks"  # kvm1's state_dir is the default
FOREIGN = "admin-laptop.example.net:41022:1873301"


@pytest.fixture(scope="module")
def guest(lab: LabConfig, lab_fleet: fleet.Fleet, ssh: Ssh) -> str:
    """A guest of the lab that goes from xen1 to kvm1 and is not migrated yet."""
    names = [
        g.inventory_name for g in lab_fleet.guests if g.xen_host == "xen1" and g.rehome_to is None
    ]
    for name in names:
        if not migrated(ssh, name):
            return name
    reset_lab()
    return names[0]


@pytest.fixture
def lock_of(ssh: Ssh, guest: str) -> Iterator[Callable[[str], str]]:
    """``lock_of(owner)`` writes a lock of ``guest`` on kvm1; removed afterwards whatever
    happened."""
    path = f"{LOCKS}/{guest}"

    def _write(owner: str) -> str:
        result = ssh(
            "kvm1", f"mkdir -p {path} && printf '%s\\n' {shlex.quote(owner)} > {path}/owner"
        )
        assert result.returncode == 0, result.stderr
        return path

    yield _write
    ssh("kvm1", f"rm -rf {path}")


def controller_hostname() -> str:
    """The hostname pyinfra sees where it runs (inside the lab's network namespace)."""
    result = subprocess.run(
        [*LAB_CLI, "exec", "--", "hostname"], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def xen_state(ssh: Ssh) -> str:
    """What a refused run must not change on the dom0: its domains and autostart links."""
    result = ssh(
        "xen1", "xl list | awk 'NR>1{print $1}'; ls -l /etc/xen/auto | awk 'NR>1{print $9,$11}'"
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_run_over_a_guest_locked_by_another_run_is_refused(guest, lock_of, ssh):
    path = lock_of(FOREIGN)
    before = xen_state(ssh)
    result = pyinfra("-y", "--limit", "kvm1", "--limit", "xen1", "--limit", guest, timeout=600)
    output = text(result)
    assert result.returncode != 0, output[-5000:]
    assert f"{guest} is locked on kvm1 by another xen2kvm run: {FOREIGN}, since " in output
    assert f"if no run is active, clear the lock on kvm1 with: rm -r {path}" in output
    assert xen_state(ssh) == before
    assert ssh("kvm1", f"cat {path}/owner").stdout.strip() == FOREIGN


def test_a_dry_run_plans_to_take_over_the_lock_of_a_run_here_that_is_gone(guest, lock_of, ssh):
    gone = f"{controller_hostname()}:99999999:1"  # no pid is that high (pid_max is 2**22)
    path = lock_of(gone)
    result = pyinfra("--dry", "--limit", "kvm1", "--limit", "xen1", "--limit", guest, timeout=900)
    output = text(result)
    assert result.returncode == 0, output[-5000:]
    assert f"{guest}: taking over the lock of {gone}" in output
    assert ssh("kvm1", f"cat {path}/owner").stdout.strip() == gone  # --dry changed nothing
