"""End to end on the lab: wave 1 and wave 2 go from Xen to KVM with deploy.py, as a user
runs it; a second run changes nothing; --dry changes nothing; rollback returns a guest to
Xen with its data and a later run migrates it again.

The tests of this module run in order and share the lab, which they first bring back to
its pristine state (lab down, lab up: the cached images make that about a minute).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.lab.conftest import LAB_CLI, Ssh
from xen2kvm.lab.config import LabConfig

pytestmark = [pytest.mark.lab, pytest.mark.slow]

PYINFRA = [sys.executable, "-m", "pyinfra", "inventory/lab.py", "deploy.py"]


def pyinfra(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """pyinfra from inside the lab's namespace (``xen2kvm lab exec``), as the README says."""
    return subprocess.run(
        [*LAB_CLI, "exec", "--", *PYINFRA, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def text(result: subprocess.CompletedProcess[str]) -> str:
    """pyinfra prints its progress and tables on stderr."""
    return result.stdout + result.stderr


def changed_operations(output: str) -> list[str]:
    """The rows of pyinfra's results table with a change (Success column not '-')."""
    assert "--> Results" in output, "no results table in pyinfra's output"
    rows = []
    in_results = False
    for line in output.splitlines():
        if line.startswith("--> Results"):
            in_results = True
            continue
        fields = line.split()
        is_row = in_results and len(fields) >= 5 and fields[-4].isdigit()
        if is_row and fields[-3] != "-" and not line.strip().startswith("Grand total"):
            rows.append(line.strip())
    return rows


def journal(ssh: Ssh, guest: str) -> list[dict]:
    result = ssh("kvm1", f"cat /var/lib/xen2kvm/journal/{guest}.jsonl")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def marks(records: list[dict], step: str) -> list[float]:
    return [r["time"] for r in records if r["step"] == step and r["event"] == "mark"]


@pytest.fixture(scope="module")
def pristine_lab(lab: LabConfig) -> LabConfig:
    subprocess.run([*LAB_CLI, "down"], check=True)
    subprocess.run([*LAB_CLI, "up"], check=True)
    return lab


def snapshot(ssh: Ssh) -> dict[str, str]:
    """What --dry must not change: the dom0's domains and autostart links, the KVM host's
    LVs and domains."""
    commands = {
        "xen1": "xl list | awk 'NR>1{print $1}'; ls -l /etc/xen/auto | awk 'NR>1{print $9,$11}'",
        "kvm1": "lvs --noheadings -o lv_name,lv_size vg0; virsh list --all --name; "
        "ls /var/lib/xen2kvm 2>/dev/null",
    }
    return {host: ssh(host, command).stdout for host, command in commands.items()}


def test_dry_run_of_a_fresh_wave_lists_every_step_and_changes_nothing(pristine_lab, ssh):
    before = snapshot(ssh)
    result = pyinfra("--limit", "wave1", "--dry")
    assert result.returncode == 0, text(result)[-5000:]
    for step in (
        "web1: host LV /dev/vg0/web1",
        "legacy1: partition table on /dev/vg0/legacy1",
        "web1: presync copy of /var",
        "legacy1: stopped on xen1",
        "web1: cutover copy of /",
        "legacy1: KVM domain defined, autostarted and running",
    ):
        assert step in text(result), f"--dry does not list {step!r}"
    # Operations on the guests themselves are one operation for all of them (pyinfra shows
    # one of their names) with both guests as its hosts.
    announce = [line for line in text(result).splitlines() if "announce its addresses" in line]
    assert announce and "2 (legacy1, web1)" in announce[0], announce
    assert snapshot(ssh) == before


def test_wave1_migrates(pristine_lab, ssh):
    result = pyinfra("-y", "--limit", "wave1")
    assert result.returncode == 0, text(result)[-5000:]
    for guest in ("web1", "legacy1"):
        records = journal(ssh, guest)
        assert marks(records, "cutover-complete"), records
        start, end = marks(records, "downtime-start")[0], marks(records, "kvm-answering")[0]
        print(f"{guest}: downtime {end - start:.0f} s")  # a number, not an assertion
        copies = [r for r in records if r["event"] == "end" and r["step"].startswith("presync:")]
        assert copies and all(r["rc"] == 0 and r["bytes"] > 0 for r in copies), copies


def test_migrated_guests_run_on_kvm_with_the_new_layout(pristine_lab, ssh):
    for guest in ("web1", "legacy1"):
        result = ssh(guest, "findmnt -n -o SOURCE /; test -d /proc/xen && echo XEN; "
                     "cat /sys/class/net/eth0/address")  # fmt: skip
        assert result.returncode == 0, result.stderr
        lines = result.stdout.split()
        assert lines[0] == f"/dev/mapper/{guest}-root"
        assert "XEN" not in lines
    virsh = ssh("kvm1", "virsh list --name")
    assert set(virsh.stdout.split()) >= {"web1", "legacy1"}
    xl = ssh("xen1", "xl list")
    assert "web1" not in xl.stdout and "legacy1" not in xl.stdout


def test_a_second_run_changes_nothing(pristine_lab):
    result = pyinfra("-y", "--limit", "wave1")
    assert result.returncode == 0, text(result)[-5000:]
    assert changed_operations(text(result)) == []


def test_dry_run_shows_drift(pristine_lab, ssh):
    ssh("xen1", "ln -s /etc/xen/web1.cfg /etc/xen/auto/web1.cfg")
    result = pyinfra("--limit", "wave1", "--dry")
    assert result.returncode == 0, text(result)[-5000:]
    drift = [line for line in text(result).splitlines() if "web1: no autostart on xen1" in line]
    assert drift and "1 (xen1)" in drift[0], drift
    assert pyinfra("-y", "--limit", "wave1").returncode == 0
    assert ssh("xen1", "test -e /etc/xen/auto/web1.cfg").returncode == 1


def test_rollback_returns_a_guest_to_xen_with_its_data(pristine_lab, ssh):
    marker = ssh("legacy1", "cat /etc/hostname; md5sum /etc/passwd").stdout
    # One guest alone, with its dom0 and KVM host, as the README's runbook says.
    result = pyinfra("-y", "--limit", "move_legacy1", "--data", "phase=rollback")
    assert result.returncode == 0, text(result)[-5000:]
    assert "legacy1" in ssh("xen1", "xl list").stdout
    assert "legacy1" not in ssh("kvm1", "virsh list --all --name").stdout
    assert ssh("legacy1", "cat /etc/hostname; md5sum /etc/passwd").stdout == marker
    assert ssh("xen1", "test -L /etc/xen/auto/legacy1.cfg").returncode == 0


def test_after_a_rollback_a_run_migrates_again(pristine_lab, ssh):
    result = pyinfra("-y", "--limit", "wave1")
    assert result.returncode == 0, text(result)[-5000:]
    assert "legacy1" in ssh("kvm1", "virsh list --name").stdout
    assert ssh("legacy1", "findmnt -n -o SOURCE /").stdout.strip() == "/dev/mapper/legacy1-root"


def test_wave2_migrates(pristine_lab, ssh):
    result = pyinfra("-y", "--limit", "wave2")
    assert result.returncode == 0, text(result)[-5000:]
    mounts = ssh("mail1", "findmnt -n -o SOURCE /srv").stdout.strip()
    assert mounts == "/dev/mapper/mail1-srv"
    assert "web1" in ssh("kvm1", "virsh list --name").stdout  # wave 1 untouched
