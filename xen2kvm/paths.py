"""Where xen2kvm keeps things on the hosts (pure: no pyinfra)."""

from __future__ import annotations

from .inventory import Guest, KvmHost

# On the dom0: where a stopped guest's LVs are mounted read-only for the final copy.
DOM0_STATE = "/var/lib/xen2kvm"


def source_root(guest: Guest) -> str:
    """The stopped guest's filesystems, mounted read-only on its dom0."""
    return f"{DOM0_STATE}/source/{guest.name}"


def source_base() -> str:
    """What the migration key may read on a dom0 (``rrsync -ro``)."""
    return f"{DOM0_STATE}/source"


def target_root(kvm: KvmHost, guest: Guest) -> str:
    """The new disk's filesystems, mounted on the KVM host while they are filled."""
    return f"{kvm.state_dir}/target/{guest.name}"


def migration_key(kvm: KvmHost) -> str:
    return f"{kvm.state_dir}/ssh/id_ed25519"


def known_hosts(kvm: KvmHost, source: str) -> str:
    """The host keys of one source (a guest or a dom0), as the KVM host checks them."""
    return f"{kvm.state_dir}/ssh/known_hosts.{source}"


def below(root: str, mountpoint: str) -> str:
    """``mountpoint`` of the guest inside a tree at ``root`` (``/`` is the tree itself)."""
    return root if mountpoint == "/" else f"{root}{mountpoint}"
