"""Issue #12 on the lab: a hostile guest cannot reach the KVM host through its migration.

Before web1 moves to KVM (after its prepare phase), it gets, as a hostile customer would
plant them: a ``grub-install`` and an ``update-grub`` that leave a marker on whatever host
runs them (also through ``/proc/1/root``, the way out of a chroot); ``/etc/udev/rules.d``
as a link to ``/etc`` (a write of the persistent-net rules through it lands in the host's
/etc); and a set-uid shell. Then:

- the warm copy's fix-ups refuse the link, naming it, and write nothing through it; the
  tree is mounted nodev, nosuid, noexec meanwhile (the set-uid shell cannot even run);
- the operator makes rules.d a directory again (as the refusal says) and the migration
  completes: web1 boots and answers under KVM with the menu xen2kvm wrote;
- no marker anywhere on kvm1, and nothing written on kvm1 outside its state directory.

Starts from a pristine lab (lab down, lab up), moves only web1 (``--limit web1 --limit
kvm1 --limit xen1``) and leaves it on KVM.
"""

from __future__ import annotations

import os
import shlex
import subprocess

import pytest

from tests.lab.conftest import LAB_CLI, Ssh
from tests.lab.test_migration import pyinfra, text
from xen2kvm import paths
from xen2kvm.lab.config import LabConfig

pytestmark = [pytest.mark.lab, pytest.mark.slow]

GUEST, KVM, DOM0 = "web1", "kvm1", "xen1"
ONLY_WEB1 = ("--limit", GUEST, "--limit", KVM, "--limit", DOM0)
TREE = paths.target_root("/var/lib/xen2kvm", GUEST)  # kvm1's state_dir is the default
MARKER = "/x2k-hostile-marker"
STAMP = "/tmp/x2k-hostile-stamp"  # on kvm1: what is newer was written during the move
SUID = "/usr/local/bin/x2k-suid-sh"

# Runs wherever it is run, and says where: on the host itself it would find /proc/1/root
# to be the host's root, even from inside a chroot.
HOSTILE_SCRIPT = f"""#!/bin/sh
# Planted by tests/lab/test_hostile_guest.py (issue #12).
for f in {MARKER} /proc/1/root{MARKER}; do
    echo "$0 ran on $(hostname) as uid $(id -u)" >> "$f" 2>/dev/null
done
exit 0
"""
PLANT = f"""set -e
for tool in grub-install update-grub; do
    for dir in /usr/local/sbin /usr/sbin; do
        printf '%s' {shlex.quote(HOSTILE_SCRIPT)} > "$dir/$tool"
        chmod 0755 "$dir/$tool"
    done
done
mkdir -p /etc/udev/rules.d
mv /etc/udev/rules.d /etc/udev/rules.d.x2k-real
ln -s /etc /etc/udev/rules.d
cp /bin/sh {SUID}
chmod 4755 {SUID}
"""
# Written on kvm1 by the move itself, not escapes: LVM's metadata backups (lvcreate), the
# tool's own journal script, the clients' caches.
EXPECTED_WRITES = ("/etc/lvm/", "/usr/local/sbin/x2k-", "/root/.cache/", "/root/.config/")


@pytest.fixture(scope="module")
def pristine_lab(lab: LabConfig) -> LabConfig:
    extra = os.environ.get("XEN2KVM_LAB_UP_ARGS", "").split()
    subprocess.run([*LAB_CLI, "down"], check=True)
    subprocess.run([*LAB_CLI, "up", *extra], check=True)
    return lab


def written_on_kvm1(ssh: Ssh) -> list[str]:
    """Files and links on kvm1's own filesystem written since the stamp, outside /var (the
    state directory, logs, apt) and /tmp, that the move is not expected to write."""
    command = (
        f"find / /boot -xdev \\( -path /var -o -path /tmp \\) -prune "
        f"-o \\( -type f -o -type l \\) -newer {STAMP} -print"
    )
    result = ssh(KVM, command, timeout=300)
    assert result.returncode == 0, result.stderr
    return [
        line for line in result.stdout.splitlines() if line and not line.startswith(EXPECTED_WRITES)
    ]


def tree_mounts(ssh: Ssh) -> dict[str, str]:
    """kvm1's mounts in web1's tree: target -> options."""
    result = ssh(KVM, "findmnt -rn -o TARGET,OPTIONS")
    assert result.returncode == 0, result.stderr
    mounts = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    return {target: options for target, options in mounts.items() if target.startswith(TREE)}


def test_prepare_then_plant_the_hostile_content(pristine_lab, ssh):
    # After prepare, which installs grub-pc in the guest: dpkg would overwrite the plants.
    result = pyinfra("-y", *ONLY_WEB1, "--data", "phase=prepare")
    assert result.returncode == 0, text(result)[-5000:]
    planted = ssh(GUEST, PLANT)
    assert planted.returncode == 0, planted.stderr
    assert ssh(GUEST, "test -L /etc/udev/rules.d && test -u " + SUID).returncode == 0
    stamp = ssh(KVM, f"touch {STAMP} && sleep 1 && test ! -e {MARKER}")
    assert stamp.returncode == 0, "kvm1 already has the marker, or no stamp: " + stamp.stderr


def test_the_warm_copy_refuses_the_link_and_writes_nothing_through_it(pristine_lab, ssh):
    result = pyinfra("-y", *ONLY_WEB1, "--data", "phase=presync")
    output = text(result)
    assert result.returncode != 0, "a link out of the tree was not refused"
    # pyinfra's own report of an operation's refusal ("--> Operation error in ...").
    assert "Operation error" in output, output[-5000:]
    assert "/etc/udev/rules.d is a symbolic link in the guest's tree" in output, output[-5000:]
    assert ssh(KVM, "test ! -e /etc/70-persistent-net.rules").returncode == 0
    assert ssh(DOM0, "xl list").stdout.split().count(GUEST) == 1, "web1 must still run on Xen"


def test_the_tree_is_mounted_nodev_nosuid_noexec(pristine_lab, ssh):
    mounts = tree_mounts(ssh)
    assert TREE in mounts and f"{TREE}/boot" in mounts, mounts
    for target, options in mounts.items():
        assert {"nodev", "nosuid", "noexec"} <= set(options.split(",")), (target, options)


def test_the_guest_s_setuid_shell_cannot_run_on_kvm1(pristine_lab, ssh):
    assert ssh(KVM, f"test -u {TREE}{SUID}").returncode == 0, "copied faithfully, set-uid"
    result = ssh(KVM, f"{TREE}{SUID} -c 'echo ran'")
    assert result.returncode == 126 and "ran" not in result.stdout, (result.stdout, result.stderr)


def test_once_the_guest_is_fixed_the_move_completes(pristine_lab, ssh):
    fixed = ssh(GUEST, "rm /etc/udev/rules.d && mv /etc/udev/rules.d.x2k-real /etc/udev/rules.d")
    assert fixed.returncode == 0, fixed.stderr
    result = pyinfra("-y", *ONLY_WEB1)
    assert result.returncode == 0, text(result)[-5000:]


def test_web1_boots_and_answers_under_kvm_with_the_menu_xen2kvm_wrote(pristine_lab, ssh):
    result = ssh(GUEST, "findmnt -n -o SOURCE /; test -d /proc/xen && echo XEN; "
                 "head -1 /boot/grub/grub.cfg")  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"/dev/mapper/{GUEST}-root"
    assert "XEN" not in lines
    assert lines[-1].startswith("# /boot/grub/grub.cfg: written by xen2kvm"), lines
    assert GUEST in ssh(KVM, "virsh list --name").stdout.split()


def test_no_marker_on_kvm1(pristine_lab, ssh):
    assert ssh(KVM, f"test ! -e {MARKER}").returncode == 0, ssh(KVM, f"cat {MARKER}").stdout


def test_the_guest_s_tools_never_ran_as_kvm1(pristine_lab, ssh):
    # The guest may have run its own plants itself (that is its business): never as kvm1.
    found = ssh(GUEST, f"cat {MARKER} 2>/dev/null || true").stdout
    assert f"on {KVM} " not in found, found


def test_nothing_written_on_kvm1_outside_its_state_directory(pristine_lab, ssh):
    assert written_on_kvm1(ssh) == []


def test_the_guest_keeps_what_it_had(pristine_lab, ssh):
    checks = (
        "test -d /etc/udev/rules.d",
        "test ! -L /etc/udev/rules.d",
        "test -f /etc/udev/rules.d/70-persistent-net.rules",
        f"test -u {SUID}",
    )
    result = ssh(GUEST, " && ".join(checks))
    assert result.returncode == 0, result.stderr
