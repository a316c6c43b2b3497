"""End to end on the lab: wave 3 rehomes the 32-bit legacy2 from xen1 onto the 64-bit dom0
xen2 (it stays on Xen) with the same commands as a KVM wave; a second run changes nothing;
when xen2's kernel changes, the next run pushes exactly that kernel's modules package to
the 32-bit guest (and points its Xen config at the new kernel), and the run after that
changes nothing. The verify suite's kernel checks pass after each.

Needs only the Xen side of the lab (``XEN2KVM_LAB_UP_ARGS=--no-kvm`` is enough). The tests
run in order; they start from wave 3 untouched (the lab is reset first when an earlier run
moved it).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.lab.conftest import LAB_CLI, Ssh
from tests.lab.runs import changed_operations, pyinfra, text, untouched
from xen2kvm.journal import is_copy, is_integrity
from xen2kvm.lab import dom0, modules
from xen2kvm.lab.config import LabConfig

pytestmark = [pytest.mark.lab, pytest.mark.slow]

GUEST, OLD, NEW = "legacy2", "xen1", "xen2"
FIRST, NEXT = list(modules.RELEASES)  # xen2's kernel at lab up, then after its "upgrade"
MODULES_OP = f"{GUEST}: modules of {NEW}'s kernel"
CONFIG_OP = f"{GUEST}: Xen config on {NEW} (new LVs, the dom0's kernel)"


@pytest.fixture(scope="module")
def pristine_lab(lab: LabConfig, ssh: Ssh) -> LabConfig:
    untouched(ssh, {GUEST: NEW})
    return lab


def snapshot(ssh: Ssh) -> dict[str, str]:
    """What --dry must not change: both dom0s' domains, configs and autostart links."""
    command = "xl list | awk 'NR>1{print $1}'; ls -l /etc/xen /etc/xen/auto; findmnt -rn"
    return {host: ssh(host, command).stdout for host in (OLD, NEW)}


def installed_modules(ssh: Ssh) -> list[str]:
    query = "dpkg-query -W -f '${Package} ${Version} ${Architecture}\\n' 'linux-modules-*'"
    return sorted(ssh(GUEST, query).stdout.splitlines())


def verify_kernel() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LAB_CLI, "exec", "--", sys.executable, "-m", "pytest", "verify/test_kernel.py",
         "--inventory", "inventory/lab.py", "--guest", GUEST, "-q", "-p", "no:cacheprovider"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def verify_wave3() -> subprocess.CompletedProcess[str]:
    """The whole verify suite, as the operator runs it after the wave."""
    return subprocess.run(
        [*LAB_CLI, "exec", "--", sys.executable, "-m", "pytest", "verify/", "--inventory",
         "inventory/lab.py", "--wave", "3", "-q", "-rs", "-p", "no:cacheprovider"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def test_dry_run_of_wave3_lists_the_rehome_and_changes_nothing(pristine_lab, ssh):
    before = snapshot(ssh)
    result = pyinfra("--limit", "wave3", "--dry")
    assert result.returncode == 0, text(result)[-5000:]
    for step in (
        MODULES_OP,
        f"{GUEST}: ext4 on /dev/xenvg/{GUEST}-root",
        f"{GUEST}: presync copy of / to {NEW}",
        f"{GUEST}: stopped on {OLD}",
        f"{GUEST}: cutover copy of /var to {NEW}",
        CONFIG_OP,
        f"{GUEST}: running on {NEW}",
    ):
        assert step in text(result), f"--dry does not list {step!r}"
    assert "KVM domain" not in text(result)
    assert snapshot(ssh) == before


def test_wave3_rehomes(pristine_lab, ssh):
    marker = ssh(GUEST, "date +%s%N > /root/x2k-marker; cat /root/x2k-marker").stdout
    result = pyinfra("-y", "--limit", "wave3")
    assert result.returncode == 0, text(result)[-5000:]
    assert GUEST not in ssh(OLD, "xl list").stdout
    assert ssh(OLD, f"test -e /etc/xen/auto/{GUEST}.cfg").returncode == 1
    assert GUEST in ssh(NEW, "xl list").stdout
    assert ssh(NEW, f"test -L /etc/xen/auto/{GUEST}.cfg").returncode == 0
    assert ssh(GUEST, "cat /root/x2k-marker").stdout == marker
    journal = ssh(NEW, f"cat /var/lib/xen2kvm/journal/{GUEST}.jsonl").stdout
    records = [json.loads(line) for line in journal.splitlines() if line.strip()]
    copies = [r for r in records if r["event"] == "end" and is_copy(r["step"])]
    assert {r["step"] for r in copies} == {
        "rehome-presync:/", "rehome-presync:/var", "rehome-catchup:/", "rehome-catchup:/var",
        "rehome-cutover:/", "rehome-cutover:/var",
    }  # fmt: skip
    assert all(r["rc"] == 0 for r in copies), copies
    checks = [r for r in records if r["event"] == "end" and is_integrity(r["step"])]
    assert {r["step"] for r in checks} == {"rehome-integrity:/", "rehome-integrity:/var"}
    assert all(r["rc"] == 0 and r["differences"] == 0 for r in checks), checks
    assert installed_modules(ssh) == [f"linux-modules-{FIRST} {modules.RELEASES[FIRST]} amd64"]


def test_the_domain_runs_on_the_new_lvs_with_the_dom0_kernel(pristine_lab, ssh):
    config = json.loads(ssh(NEW, f"xl list -l {GUEST}").stdout)[0]["config"]
    assert config["b_info"]["type.pv"]["kernel"] == f"/boot/vmlinuz-{FIRST}"
    assert config["b_info"]["type.pv"]["ramdisk"] == f"/boot/initrd.img-{FIRST}"
    targets = {d["pdev_path"] for d in config["disks"]}
    assert targets == {dom0.lv_path(GUEST, role) for role in ("root", "var", "swap")}
    # The guest's root is xen2's LV (the lab's container mounts its loop device).
    loops = json.loads(dom0.loops_file(pristine_lab, GUEST, NEW).read_text())
    spec = json.loads((pristine_lab.run / GUEST / "spec.json").read_text())
    assert loops["root"] in {m["source"] for m in spec["mounts"]}


def test_the_old_dom0_refuses_to_start_it_too(pristine_lab, ssh):
    result = ssh(OLD, f"xl create /etc/xen/{GUEST}.cfg")
    assert result.returncode != 0 and "split brain" in result.stderr, result.stderr


def test_a_second_run_changes_nothing(pristine_lab):
    result = pyinfra("-y", "--limit", "wave3")
    assert result.returncode == 0, text(result)[-5000:]
    assert changed_operations(text(result)) == []


def test_verify_kernel_checks_pass(pristine_lab):
    result = verify_kernel()
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "3 passed" in result.stdout, result.stdout[-2000:]


def test_the_whole_verify_suite_passes_for_wave3(pristine_lab):
    result = verify_wave3()
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_a_new_dom0_kernel_shows_in_a_dry_run(pristine_lab, ssh):
    assert ssh(NEW, f"echo {NEXT} > {dom0.KERNEL_RELEASE_FILE}").returncode == 0
    result = pyinfra("--limit", "wave3", "--dry")
    assert result.returncode == 0, text(result)[-5000:]
    lines = [line for line in text(result).splitlines() if MODULES_OP in line]
    assert lines and f"1 ({GUEST})" in lines[0], lines


def test_a_new_dom0_kernel_pushes_its_modules_to_the_32bit_guest(pristine_lab, ssh):
    result = pyinfra("-y", "--limit", "wave3")
    assert result.returncode == 0, text(result)[-5000:]
    changed = [" ".join(row.split()[:-4]) for row in changed_operations(text(result))]
    assert changed == [f"tasks/prepare.py | {MODULES_OP}", f"tasks/cutover.py | {CONFIG_OP}"]
    assert installed_modules(ssh) == [
        f"linux-modules-{release} {version} amd64" for release, version in modules.RELEASES.items()
    ]


def test_the_run_after_changes_nothing(pristine_lab):
    result = pyinfra("-y", "--limit", "wave3")
    assert result.returncode == 0, text(result)[-5000:]
    assert changed_operations(text(result)) == []
    checks = verify_kernel()
    assert checks.returncode == 0, checks.stdout[-5000:]


def test_rollback_returns_it_to_the_old_dom0_as_it_was(pristine_lab, ssh):
    marker = ssh(GUEST, "cat /root/x2k-marker").stdout
    ssh(GUEST, "touch /root/x2k-written-on-the-new-dom0")
    result = pyinfra("-y", "--limit", "wave3", "--data", "phase=rollback")
    assert result.returncode == 0, text(result)[-5000:]
    assert GUEST in ssh(OLD, "xl list").stdout
    assert GUEST not in ssh(NEW, "xl list").stdout
    assert ssh(OLD, f"test -L /etc/xen/auto/{GUEST}.cfg").returncode == 0
    assert ssh(NEW, f"test -e /etc/xen/auto/{GUEST}.cfg").returncode == 1
    assert ssh(GUEST, "cat /root/x2k-marker").stdout == marker
    assert ssh(GUEST, "test -e /root/x2k-written-on-the-new-dom0").returncode == 1


def test_after_a_rollback_a_run_rehomes_it_again(pristine_lab, ssh):
    result = pyinfra("-y", "--limit", "wave3")
    assert result.returncode == 0, text(result)[-5000:]
    assert GUEST in ssh(NEW, "xl list").stdout and GUEST not in ssh(OLD, "xl list").stdout
    assert f"linux-modules-{NEXT}" in " ".join(installed_modules(ssh))
    again = pyinfra("-y", "--limit", "wave3")
    assert again.returncode == 0, text(again)[-5000:]
    assert changed_operations(text(again)) == []
