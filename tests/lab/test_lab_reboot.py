"""``xen2kvm lab reboot xen1`` on the lab: what a real dom0 reboot keeps and loses.

Before the reboot xen1 gets a file in /root and in /tmp, a mount, and one of its running
guests loses its /etc/xen/auto link. After it: the file in /root is there, /tmp is empty,
the mount is gone, the guests still linked run again (and answer SSH), the unlinked one
stays off, and a ``lab up`` over the running lab leaves it off too (as a migrated guest,
whose link the cutover removed, must stay off). The lab is left as it was found: the link
comes back and that guest is created again. Needs only the Xen side (``--no-kvm``) and
moves no guest; skipped when xen1's running domains are not exactly its autostarted ones (a
migration moved one), since a reboot would then change the lab.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.lab.conftest import LAB_CLI, Ssh
from xen2kvm.lab.config import LabConfig

pytestmark = [pytest.mark.lab, pytest.mark.slow]

DOM0 = "xen1"
MARK = "x2k-reboot-test"
MOUNT = f"/mnt/{MARK}"


@dataclass(frozen=True)
class Reboot:
    result: subprocess.CompletedProcess[str]
    up_again: subprocess.CompletedProcess[str]  # ``lab up --no-kvm`` over the rebooted lab
    linked: frozenset[str]  # running and autostarted before the reboot
    unlinked: str  # the guest whose link the test removed


def domains(ssh: Ssh) -> set[str]:
    listing = ssh(DOM0, "xl list").stdout.splitlines()[1:]
    return {line.split()[0] for line in listing} - {"Domain-0"}


def autostarted(ssh: Ssh) -> dict[str, str]:
    """The domains /etc/xen/auto starts, by the name each config gives (mail1's config is
    mail1.fleet.example.cfg), and their links."""
    lines = ssh(DOM0, "grep -H '^name *=' /etc/xen/auto/*").stdout.splitlines()
    found = (re.fullmatch(r"(/etc/xen/auto/[^:]+):name\s*=\s*'([^']+)'\s*", line) for line in lines)
    return {m[2]: m[1] for m in found if m}


@pytest.fixture(scope="module")
def rebooted(lab: LabConfig, ssh: Ssh) -> Iterator[Reboot]:
    linked, links = domains(ssh), autostarted(ssh)
    if linked != set(links) or len(linked) < 2:
        pytest.skip(f"{DOM0}'s running domains are not its autostarted ones: it is not pristine")
    unlinked = "legacy1" if "legacy1" in linked else sorted(linked)[-1]
    link = links[unlinked]
    target = ssh(DOM0, f"readlink {link}").stdout.strip()
    prepare = (
        f"echo {MARK} > /root/{MARK} && echo {MARK} > /tmp/{MARK} && mkdir -p {MOUNT} && "
        f"mount -t tmpfs {MARK} {MOUNT} && rm {link}"
    )
    assert ssh(DOM0, prepare).returncode == 0
    try:
        result = subprocess.run(
            [*LAB_CLI, "reboot", DOM0], capture_output=True, text=True, timeout=600, check=False
        )
        up_again = subprocess.run(
            [*LAB_CLI, "up", "--no-kvm"], capture_output=True, text=True, timeout=600, check=False
        )
        yield Reboot(result, up_again, frozenset(linked), unlinked)
    finally:
        restore = (
            f"ln -sfn {target} {link} && rm -f /root/{MARK} && "
            f"(! mountpoint -q {MOUNT} || umount {MOUNT}) && rmdir {MOUNT} && "
            f"(xl domid {unlinked} >/dev/null 2>&1 || xl create -q {link})"
        )
        assert ssh(DOM0, restore).returncode == 0
        assert domains(ssh) == linked


def test_reboot_succeeds_and_says_what_xendomains_did(rebooted):
    output = rebooted.result.stdout + rebooted.result.stderr
    assert rebooted.result.returncode == 0, output
    assert f"{DOM0}: xendomains: {rebooted.unlinked} " in output


def test_a_file_in_root_survives_the_reboot(rebooted, ssh):
    assert ssh(DOM0, f"cat /root/{MARK}").stdout.strip() == MARK


def test_tmp_is_emptied_at_boot(rebooted, ssh):
    assert ssh(DOM0, f"test -e /tmp/{MARK}").returncode == 1


def test_a_mount_made_in_the_dom0_is_gone(rebooted, ssh):
    assert ssh(DOM0, f"findmnt -rn {MOUNT}").stdout == ""


def test_the_guests_still_linked_run_again(rebooted, ssh):
    assert domains(ssh) == rebooted.linked - {rebooted.unlinked}


def test_the_guests_still_linked_answer_ssh(rebooted, ssh):
    names = sorted(rebooted.linked - {rebooted.unlinked})
    answers = {name: ssh(name, "hostname").stdout.strip() for name in names}
    assert answers == {name: name for name in names}


def test_the_unlinked_guest_stays_off(rebooted, ssh):
    assert ssh(DOM0, f"xl domid {rebooted.unlinked}").returncode != 0


def test_lab_up_over_the_running_lab_leaves_the_unlinked_guest_off(rebooted, ssh):
    output = rebooted.up_again.stdout + rebooted.up_again.stderr
    assert rebooted.up_again.returncode == 0, output
    assert f"guest {rebooted.unlinked}: left off (not in its dom0's /etc/xen/auto)" in output
    assert ssh(DOM0, f"xl domid {rebooted.unlinked}").returncode != 0
    assert domains(ssh) == rebooted.linked - {rebooted.unlinked}
