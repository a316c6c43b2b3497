"""The verify suite against the migrated lab guests: it passes, and each deliberate breakage
is caught by exactly the check meant for it (a check that cannot fail is a defect).

Runs after test_migration.py (both waves migrated); it migrates wave 1 itself when run on
its own. Every breakage is repaired before the next one.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.lab.conftest import LAB_CLI, Ssh
from xen2kvm.lab.config import LabConfig

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
VERIFY = [sys.executable, "-m", "pytest", "verify/", "--inventory", "inventory/lab.py"]


def lab_exec(*command: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LAB_CLI, "exec", "--", *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )


def run_verify(tmp_path: Path, *args: str) -> tuple[set[str], set[str], str]:
    """Run ``pytest verify/`` as an operator would; (failed tests, passed tests, output)."""
    report = tmp_path / f"verify-{time.monotonic_ns()}.xml"
    result = lab_exec(*VERIFY, "-p", "no:cacheprovider", f"--junitxml={report}", *args)
    failed, passed = set(), set()
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '').rsplit('.', 1)[-1]}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            failed.add(name)
        elif case.find("skipped") is None:
            passed.add(name)
    return failed, passed, result.stdout + result.stderr


@pytest.fixture(scope="module")
def migrated(lab: LabConfig, ssh: Ssh) -> LabConfig:
    """Wave 1 on KVM, cut over by the current code (so with its baseline)."""
    done = all(
        ssh("kvm1", f"test -s /var/lib/xen2kvm/baseline/{guest}").returncode == 0
        and ssh(
            "kvm1", f"grep -q cutover-complete /var/lib/xen2kvm/journal/{guest}.jsonl"
        ).returncode
        == 0
        for guest in ("web1", "legacy1")
    )
    if not done:
        result = lab_exec(
            sys.executable, "-m", "pyinfra", "-y", "inventory/lab.py", "deploy.py",
            "--limit", "wave1", timeout=1800,
        )  # fmt: skip
        assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return lab


def test_verify_passes_after_the_migration(migrated, tmp_path):
    started = time.monotonic()
    failed, passed, output = run_verify(tmp_path, "--wave", "1")
    took = time.monotonic() - started
    print(f"\npytest verify/ --wave 1: {len(passed)} passed in {took:.0f} s")
    assert not failed, output[-6000:]
    assert len(passed) > 40, output[-3000:]


# what breaks: (where, the command, its repair, the checks that must fail, what they say)
BREAKAGES = {
    "mail: exim stopped": (
        "web1",
        "systemctl stop exim4",
        "systemctl start exim4",
        {"test_mail::test_mta_running[web1]", "test_mail::test_mta_listens_as_before[web1]"},
        "web1: the MTA exim4 is not running",
    ),
    "networking: a service address removed": (
        "web1",
        "ip addr del 198.51.100.111/24 dev eth0",
        "ip addr add 198.51.100.111/24 dev eth0 label eth0:1",
        {"test_networking::test_service_address[web1-198.51.100.111]"},
        "web1: expected 198.51.100.111 on eth0, found ['198.51.100.101/24']",
    ),
    "networking: a stale neighbour entry on the gateway": (
        "gateway",
        "ip neigh replace 198.51.100.111 lladdr 02:00:00:00:00:99 dev br0 nud permanent",
        "ip neigh del 198.51.100.111 dev br0",
        {"test_networking::test_neighbour_entry[web1-198.51.100.111]"},
        "the neighbour entry for 198.51.100.111 here says 02:00:00:00:00:99",
    ),
    "logs: the syslog truncated": (
        "web1",
        "cp -p /var/log/syslog /root/syslog.x2k-test && truncate -s 0 /var/log/syslog",
        "cat /root/syslog.x2k-test /var/log/syslog > /root/syslog.x2k-new"
        " && cat /root/syslog.x2k-new > /var/log/syslog && rm /root/syslog.x2k-*",
        {"test_logs::test_no_log_truncated[web1]"},
        "web1: truncated or lost logs: ['/var/log/syslog: ",
    ),
    "services: the application stopped": (
        "web1",
        "systemctl stop x2k-app",
        "systemctl start x2k-app",
        {
            "test_services::test_service_running[web1-x2k-app]",
            "test_services::test_daemons_as_before[web1]",
            "test_services::test_listeners_as_before[web1]",
        },
        "web1: service x2k-app is not running",
    ),
    "platform: a filesystem unmounted": (
        "web1",
        "umount /boot",
        "mount /boot",
        {"test_platform::test_fstab_mounted[web1]"},
        "web1: fstab entries not mounted: ['/boot']",
    ),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_breakage_fails_exactly_its_check(migrated, ssh, tmp_path, breakage):
    where, breaking, repair, expected, message = BREAKAGES[breakage]

    def run(command: str) -> subprocess.CompletedProcess[str]:
        if where == "gateway":  # the lab network's namespace: where verify runs from
            return lab_exec("sh", "-c", command)
        return ssh(where, command)

    broken = run(breaking)
    assert broken.returncode == 0, broken.stderr
    try:
        failed, _, output = run_verify(tmp_path, "--guest", "web1")
    finally:
        repaired = run(repair)
    assert repaired.returncode == 0, repaired.stderr
    assert failed == expected, output[-6000:]
    assert message in output, output[-6000:]
