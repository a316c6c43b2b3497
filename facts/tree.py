"""
Facts about paths inside a guest's tree on this host (its new disk, mounted while it is
filled). Everything in a tree came from the guest, symbolic links included: a link the
guest planted (``/etc/udev/rules.d -> /etc``) would take a write, a mount or a read by
the host out of the tree and onto the host itself. These facts say, without following
any link, what each component of a path below the tree's root is; the operations that
write, mount or read there refuse a path with a link on the way.

Nothing but the tool writes in a tree while it is mounted on this host (the guest runs
elsewhere, or not at all), so what these facts report still holds when the operation's
commands run.
"""

from __future__ import annotations

import posixpath
import shlex

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override

# What `test` finds, one letter in the output: a link is never followed.
KINDS = {"l": "link", "d": "directory", "f": "file", "o": "other", "-": "missing"}
_A = {
    "link": "a symbolic link",
    "directory": "a directory",
    "file": "a file",
    "other": "a FIFO, socket or device node",
}


def guest_path(path: str) -> str | None:
    """``path`` of the guest (``/etc/fstab``) as a path relative to its tree's root
    (``etc/fstab``); None when it is not a plain absolute path: relative, with ``.``,
    ``..`` or empty components, or with control characters."""
    if not isinstance(path, str) or not path.startswith("/") or path == "/":
        return None
    relative = path[1:]
    parts = relative.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return None
    if any(not char.isprintable() for char in relative):
        return None
    return relative


def components(relative: str) -> list[str]:
    """``etc/udev/rules.d`` -> ``etc``, ``etc/udev``, ``etc/udev/rules.d``."""
    parts = relative.split("/")
    return ["/".join(parts[: index + 1]) for index in range(len(parts))]


def unsafe(kinds: dict[str, str], relative: str, leaf: tuple[str, ...]) -> str | None:
    """Why ``relative`` cannot be used, or None: a symbolic link on the way (or as its
    last component, unless ``leaf`` allows a link), a component on the way that is not a
    directory, or a last component that is none of ``leaf`` (missing is always fine)."""
    names = components(relative)
    for name in names[:-1]:
        kind = kinds.get(name, "missing")
        if kind == "link":
            return f"/{name} is a symbolic link"
        if kind not in ("directory", "missing"):
            return f"/{name} is {_A[kind]}, not a directory"
    kind = kinds.get(names[-1], "missing")
    if kind in leaf or kind == "missing":
        return None
    wanted = " or ".join(_A[want] for want in leaf)
    return f"/{names[-1]} is {_A.get(kind, kind)}, not {wanted}"


def where(root: str, relative: str) -> str:
    """The host path of ``relative`` in the tree at ``root``."""
    return posixpath.join(root, relative)


class TreeComponents(FactBase[dict]):
    """
    What each component of a path in a tree is, by its path relative to the tree's root
    (``link``, ``directory``, ``file``, ``other`` or ``missing``), links not followed.
    ``path`` is the guest's path (``/etc/udev/rules.d/x``); the tree's root itself is the
    host's and is not looked at.

    .. code:: python

        {"etc": "directory", "etc/udev": "directory", "etc/udev/rules.d": "link",
         "etc/udev/rules.d/70-persistent-net.rules": "missing"}

    Sample output::

        d etc
        d etc/udev
        l etc/udev/rules.d
        - etc/udev/rules.d/70-persistent-net.rules
    """

    default = dict

    @override
    def command(self, root: str, path: str) -> str:
        relative = guest_path(path)
        if relative is None:
            raise ValueError(f"not a plain absolute path: {path!r}")
        names = " ".join(shlex.quote(name) for name in components(relative))
        return (
            f'for p in {names}; do f={shlex.quote(root)}/"$p"; '
            'if test -L "$f"; then k=l; elif test -d "$f"; then k=d; '
            'elif test -f "$f"; then k=f; elif test -e "$f"; then k=o; else k=-; fi; '
            'printf \'%s %s\\n\' "$k" "$p"; done'
        )

    @override
    def process(self, output: list[str]) -> dict:
        found = {}
        for line in output:
            kind, sep, name = line.partition(" ")
            if not sep or kind not in KINDS or not name:
                raise FactProcessError(f"unexpected line about a tree path: {line!r}")
            found[name] = KINDS[kind]
        return found
