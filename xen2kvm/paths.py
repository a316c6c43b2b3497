"""Where xen2kvm keeps things on the hosts (pure: no pyinfra).

A move's destination (a KVM host, or a rehomed guest's new dom0) keeps its state in one
directory, ``state_dir``: the journal, the run locks, the frozen plan inputs, the
migration key with the sources' host keys, and the new tree while it is filled. A dom0
keeps the stopped guests' LVs mounted read-only below ``DOM0_STATE/source``.
"""

from __future__ import annotations

import hashlib

from .inventory import Guest

# Runtime state on a destination (a tmpfs, root's only): what does not outlive a boot.
RUNTIME_DIR = "/run/xen2kvm"
# A Unix socket's path holds at most 107 bytes (ssh adds 17 while it binds): the control
# socket's name is a digest, whatever the state directory's and the guest's lengths.
_DIGEST_HEX = 20

# A dom0's state directory: the source mounts there, and a rehome's journal and tree.
DOM0_STATE = "/var/lib/xen2kvm"


def source_root(guest: Guest) -> str:
    """The stopped guest's filesystems, mounted read-only on its dom0."""
    return f"{DOM0_STATE}/source/{guest.name}"


def source_base() -> str:
    """What the migration key may read on a dom0 (the root of its read-only rsync module)."""
    return f"{DOM0_STATE}/source"


def target_root(state_dir: str, guest: str) -> str:
    """The new disk's (or new LVs') filesystems, mounted on the destination while filled."""
    return f"{state_dir}/target/{guest}"


def migration_key(state_dir: str) -> str:
    """The destination's own key for reading the guest (running) and its dom0 (stopped)."""
    return f"{state_dir}/ssh/id_ed25519"


def known_hosts(state_dir: str, source: str) -> str:
    """The host keys of one source (a guest or a dom0), as the destination checks them."""
    return f"{state_dir}/ssh/known_hosts.{source}"


def connection(state_dir: str, guest: str) -> str:
    """The control socket of the SSH connection the destination holds to the guest's dom0
    for its window (``operations.ssh.master``): the final copies and their integrity
    checks share it instead of each making its own."""
    digest = hashlib.sha256(f"{state_dir}\0{guest}".encode()).hexdigest()[:_DIGEST_HEX]
    return f"{RUNTIME_DIR}/ssh/{digest}"


def plan_inputs(state_dir: str, guest: str) -> str:
    """The guest's plan inputs, frozen at its first presync (``xen2kvm.planinputs``)."""
    return f"{state_dir}/plans/{guest}.json"


def below(root: str, mountpoint: str) -> str:
    """``mountpoint`` of the guest inside a tree at ``root`` (``/`` is the tree itself)."""
    return root if mountpoint == "/" else f"{root}{mountpoint}"
