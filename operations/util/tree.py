"""
The check every operation makes before it writes, reads or mounts at a path in a guest's
tree (see ``facts.tree``): no component of the path below the tree's root is a symbolic
link, and the last one is what the operation expects.
"""

from __future__ import annotations

from pyinfra import host
from pyinfra.api import OperationError, OperationValueError

from facts.tree import TreeComponents, guest_path, unsafe, where
from operations.util.facts import fact


def relative(path: object) -> str:
    """``/etc/fstab`` as ``etc/fstab``; OperationValueError when not a plain guest path."""
    found = guest_path(path) if isinstance(path, str) else None
    if found is None:
        raise OperationValueError(
            f"path must be the guest's absolute path without '.', '..', '//' or control "
            f"characters, not {path!r}"
        )
    return found


def checked(root: str, path: str, leaf: tuple[str, ...], doing: str = "write") -> dict[str, str]:
    """What each component of ``path`` in the tree at ``root`` is (``TreeComponents``);
    OperationError when one would lead out of the tree (a link), or when the last one is
    not one of ``leaf`` (or missing)."""
    name = relative(path)
    kinds = fact(host, TreeComponents, root=root, path=path)
    reason = unsafe(kinds, name, leaf)
    if reason:
        raise OperationError(
            f"{where(root, name)} on {host.name}: {reason} in the guest's tree: xen2kvm does "
            f"not {doing} through it (it can lead out of the tree onto this host). Make it a "
            "plain directory or file in the guest, or remove it, and run again"
        )
    return kinds
