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


# Every kind of file the integrity check must carry, planted in web1's /var (a filesystem
# of its own) before it moves: the journal's integrity records of its cutover must show 0
# differences with all of them on board. ODD_CHECK reads them back under KVM.
ODD = "/var/lib/x2k-odd"
UNNAMED = 48213  # no user nor group of this number on kvm1 (nor in the guest)
PLANT_ODD = f"""python3 - <<'PYTHON'
import os, socket, struct
root = {ODD!r}
os.makedirs(root, exist_ok=True)
def path(name):
    return os.path.join(root.encode(), name if isinstance(name, bytes) else name.encode())
with open(path("capability"), "wb") as out:
    out.write(b"a binary with cap_net_raw, as ping has")
os.chmod(path("capability"), 0o755)
os.setxattr(path("capability"), "security.capability",
            bytes.fromhex("0100000200200000000000000000000000000000"))
with open(path("xattr"), "w") as out:
    out.write("a user xattr\\n")
os.setxattr(path("xattr"), "user.x2k", b"kept")
with open(path("acl"), "w") as out:
    out.write("readable by one more user (a POSIX ACL)\\n")
acl = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, perm, who) for tag, perm, who in (
    (0x01, 6, 0xFFFFFFFF), (0x02, 4, {UNNAMED}), (0x04, 4, 0xFFFFFFFF),
    (0x10, 4, 0xFFFFFFFF), (0x20, 4, 0xFFFFFFFF)))
os.setxattr(path("acl"), "system.posix_acl_access", acl)
with open(path("owned"), "w") as out:
    out.write("owned by a uid and gid nobody has a name for\\n")
os.chown(path("owned"), {UNNAMED}, {UNNAMED})
with open(path("linked-a"), "w") as out:
    out.write("one inode, two names\\n")
os.link(path("linked-a"), path("linked-b"))
os.symlink("../../../etc/hostname", path("link"))
os.mknod(path("null"), 0o600 | 0o020000, os.makedev(1, 3))
os.mkfifo(path("fifo"))
sock = socket.socket(socket.AF_UNIX)
sock.bind(path("socket"))
sock.close()
for name in ("with space", "new\\nline", b"latin1-\\xe9t\\xe9", "tab\\there"):
    with open(path(name), "wb") as out:
        out.write(b"odd name\\n")
with open(path("sparse"), "wb") as out:
    out.truncate(256 * 1024 * 1024)
    out.write(b"data before a 256 MiB hole\\n")
PYTHON
"""
# Under KVM: each kind is still what it was (the integrity check compared them all).
ODD_CHECK = (
    f"cd {ODD} && python3 -c \"import os; os.getxattr('capability', 'security.capability')\""
    f" && test $(stat -c %u:%g owned) = {UNNAMED}:{UNNAMED}"
    " && test $(stat -c %i linked-a) = $(stat -c %i linked-b)"
    " && test -c null && test -p fifo && test -S socket && test -L link"
    " && test -f 'with space' && test -f \"$(printf 'new\\nline')\""
    " && test $(stat -c %b sparse) -lt 2048"
)
