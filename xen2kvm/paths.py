"""Where xen2kvm keeps things on the hosts (pure: no pyinfra).

A move's destination (a KVM host, or a rehomed guest's new dom0) keeps its state in one
directory, ``state_dir``: the journal, the run locks, the frozen plan inputs, the
migration key with the sources' host keys, and the new tree while it is filled. A dom0
keeps the stopped guests' LVs mounted read-only below ``DOM0_STATE/source``.
"""

from __future__ import annotations

from .inventory import Guest

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


def plan_inputs(state_dir: str, guest: str) -> str:
    """The guest's plan inputs, frozen at its first presync (``xen2kvm.planinputs``)."""
    return f"{state_dir}/plans/{guest}.json"


def below(root: str, mountpoint: str) -> str:
    """``mountpoint`` of the guest inside a tree at ``root`` (``/`` is the tree itself)."""
    return root if mountpoint == "/" else f"{root}{mountpoint}"
