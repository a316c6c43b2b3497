"""Issue #12's hostile guest, for the lab tests: what a hostile customer plants in web1
before it moves, and how to see, on kvm1, whether any of it reached the host.

The plants: a ``grub-install`` and an ``update-grub`` that leave a marker on whatever host
runs them (also through ``/proc/1/root``, the way out of a chroot); ``/etc/udev/rules.d``
as a link to ``/etc`` (a write of the persistent-net rules through it lands in the host's
/etc); and a set-uid shell.
"""

from __future__ import annotations

import shlex

from tests.lab.conftest import Ssh
from xen2kvm import paths

GUEST, KVM = "web1", "kvm1"
TREE = paths.target_root("/var/lib/xen2kvm", GUEST)  # kvm1's state_dir is the default
MARKER = "/x2k-hostile-marker"
STAMP = "/tmp/x2k-hostile-stamp"  # on kvm1: what is newer was written during the move
SUID = "/usr/local/bin/x2k-suid-sh"

# Runs wherever it is run, and says where: on the host itself it would find /proc/1/root
# to be the host's root, even from inside a chroot.
SCRIPT = f"""#!/bin/sh
# Planted by tests/lab/test_migration.py (issue #12).
for f in {MARKER} /proc/1/root{MARKER}; do
    echo "$0 ran on $(hostname) as uid $(id -u)" >> "$f" 2>/dev/null
done
exit 0
"""
PLANT = f"""set -e
for tool in grub-install update-grub; do
    for dir in /usr/local/sbin /usr/sbin; do
        printf '%s' {shlex.quote(SCRIPT)} > "$dir/$tool"
        chmod 0755 "$dir/$tool"
    done
done
mkdir -p /etc/udev/rules.d
mv /etc/udev/rules.d /etc/udev/rules.d.x2k-real
ln -s /etc /etc/udev/rules.d
cp /bin/sh {SUID}
chmod 4755 {SUID}
"""
# What the operator does when the refusal names the link.
FIX = "rm /etc/udev/rules.d && mv /etc/udev/rules.d.x2k-real /etc/udev/rules.d"
# Written on kvm1 by the move itself, not escapes: LVM's metadata backups (lvcreate), the
# tool's own journal script, the clients' caches.
EXPECTED_WRITES = ("/etc/lvm/", "/usr/local/sbin/x2k-", "/root/.cache/", "/root/.config/")


def written_on_kvm(ssh: Ssh) -> list[str]:
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
