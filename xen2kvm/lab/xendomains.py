"""What Debian's ``xendomains`` does when a dom0 shuts down and boots, for ``lab reboot``.

A real dom0 reboot takes its domains down and up again through this init script: at
shutdown it shuts down every running domain (``xl shutdown -w``; the lab keeps no saved
domain images, as with ``XENDOMAINS_SAVE=""``, so nothing is restored at boot), and at boot
it runs ``xl create`` for each config in ``/etc/xen/auto`` (``$XENDOMAINS_AUTO/*``: hidden
names are not matched; a domain already running is skipped). Here both go through the
lab's controller with the dom0 named as the asker, which is what the dom0's ``xl`` sends,
so the controller's state stays right.

``autostart`` is the pure part (which domains to create from what ``/etc/xen/auto``
holds); ``read_auto_dir`` reads that directory in the running dom0's own root.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from xen2kvm.errors import XenConfigError
from xen2kvm.xenconfig import parse_xen_config

from . import hypervisor
from .config import LabConfig

AUTO_DIR = "/etc/xen/auto"
MAX_LINKS = 8  # symlink hops followed inside the dom0's root before giving up


@dataclass(frozen=True)
class Start:
    """One domain xendomains creates at boot, from ``/etc/xen/auto/<entry>``."""

    entry: str
    name: str
    memory_mib: int
    vcpus: int


def autostart(entries: Mapping[str, str | None]) -> tuple[list[Start], list[str]]:
    """The domains to create at boot, and the problems that keep an entry from starting.

    + entries: ``/etc/xen/auto``'s names -> the config text (None when it cannot be read:
      a dangling link, a directory)

    Entries come in name order (the shell glob's), hidden names are not matched; a
    domain named by two entries is created once (the second ``xl create`` would fail).
    """
    starts: list[Start] = []
    problems: list[str] = []
    for entry in sorted(entries):
        if entry.startswith("."):
            continue
        text = entries[entry]
        where = f"{AUTO_DIR}/{entry}"
        if text is None:
            problems.append(f"{where}: cannot be read (a dangling link?)")
            continue
        try:
            domain = parse_xen_config(text, where)
        except XenConfigError as exc:
            problems.append(str(exc))
            continue
        if not domain.name:
            problems.append(f"{where}: has no name = '...'")
        elif domain.name not in {s.name for s in starts}:
            starts.append(Start(entry, domain.name, domain.memory_mib or 512, domain.vcpus or 1))
    return starts, problems


def _resolve(root: Path, path: Path) -> Path:
    """``path`` (under ``root``) with its symlinks followed inside ``root``: the dom0's
    links are absolute (``/etc/xen/web1.cfg``) and mean its root, not ours."""
    for _ in range(MAX_LINKS):
        if not path.is_symlink():
            return path
        target = os.readlink(path)
        path = root / target.lstrip("/") if target.startswith("/") else path.parent / target
    return path


def read_auto_dir(root: Path) -> dict[str, str | None]:
    """``/etc/xen/auto`` of the dom0 whose root is ``root``: entry -> config text."""
    auto = root / AUTO_DIR.lstrip("/")
    entries: dict[str, str | None] = {}
    if not auto.is_dir():
        return entries
    for path in auto.iterdir():
        target = _resolve(root, path)
        try:
            entries[path.name] = target.read_text() if target.is_file() else None
        except (OSError, UnicodeDecodeError):
            entries[path.name] = None
    return entries


def _ask(cfg: LabConfig, dom0: str, req: dict[str, object]) -> dict[str, object]:
    return hypervisor.request(cfg, {**req, "dom0": dom0})


def running(cfg: LabConfig, dom0: str) -> list[dict[str, object]]:
    """The domains running on ``dom0`` (``xl list`` there, without Domain-0)."""
    answer = _ask(cfg, dom0, {"op": "list"})
    return list(answer["domains"])  # type: ignore[arg-type]


def stop(cfg: LabConfig, dom0: str, say: Callable[[str], None]) -> list[str]:
    """Shut down every domain of ``dom0``, one after the other (``xl shutdown -w``); one
    that does not go is destroyed, as the reset after the shutdown would. The guests."""
    stopped = []
    for domain in running(cfg, dom0):
        guest, label = str(domain["guest"]), f"{domain['name']} (domid {domain['domid']})"
        answer = _ask(cfg, dom0, {"op": "shutdown", "name": guest})
        if answer.get("ok") and not answer.get("pending"):  # pending: it ignores the request
            say(f"{dom0}: xendomains: {label} shut down")
        else:
            _ask(cfg, dom0, {"op": "destroy", "name": guest})
            say(f"{dom0}: xendomains: {label} did not shut down ({answer.get('error')}), destroyed")
        stopped.append(guest)
    return stopped


def start(
    cfg: LabConfig, dom0: str, root: Path, say: Callable[[str], None]
) -> tuple[list[str], list[str]]:
    """``xl create`` each domain of ``dom0``'s ``/etc/xen/auto`` that is not running: the
    guests created (or found running), and the problems (one line each)."""
    starts, problems = autostart(read_auto_dir(root))
    names = ", ".join(s.entry for s in starts) or "nothing"
    say(f"{dom0}: xendomains: {AUTO_DIR} holds {names}")
    up = {str(d["name"]) for d in running(cfg, dom0)}
    started = []
    for s in starts:
        if s.name in up:
            say(f"{dom0}: xendomains: {s.name} already runs (skip)")
            started.append(s.name)
            continue
        req = {
            "op": "create",
            "name": s.name,
            "memory_mib": s.memory_mib,
            "vcpus": s.vcpus,
            "config": f"{AUTO_DIR}/{s.entry}",
        }
        answer = _ask(cfg, dom0, req)
        if answer.get("ok"):
            say(f"{dom0}: xendomains: {s.name} created (domid {answer['domid']})")
            started.append(s.name)
        else:
            problems.append(f"{AUTO_DIR}/{s.entry}: xl create failed: {answer.get('error')}")
    return started, problems
