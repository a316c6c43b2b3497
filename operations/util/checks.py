"""
Argument checks shared by the operation modules: each raises ``OperationValueError``
with the argument's name, what it must be and the value given, before any fact is read.
"""

from __future__ import annotations

import re

from pyinfra.api import OperationValueError

GUEST_RE = re.compile(r"[a-z0-9][a-z0-9.-]*")  # the fleet inventory's host names


def check_bool(label: str, value: object) -> bool:
    """A desired-state flag: ``True`` or ``False``, never a string."""
    if not isinstance(value, bool):
        raise OperationValueError(f"{label} must be True or False, not {value!r}")
    return value


def check_path(label: str, value: object, what: str = "path") -> str:
    """An absolute path on the host, on one line; a ``file path`` is not ``/`` itself."""
    if (
        not isinstance(value, str)
        or not value.startswith("/")
        or "\n" in value
        or (what == "file path" and value.rstrip("/") == "")
    ):
        raise OperationValueError(f"{label} must be an absolute {what}, not {value!r}")
    return value


def check_guest(guest: object) -> str:
    """A guest's name as the fleet inventory writes host names (it names files)."""
    if not isinstance(guest, str) or not GUEST_RE.fullmatch(guest):
        raise OperationValueError(f"not a guest name: {guest!r}")
    return guest


def check_domain(domain: object, hypervisor: str) -> str:
    """A guest's domain name under ``Xen`` or ``libvirt``: non-empty, printable, no ``/``,
    not an option (``-``) nor hidden (``.``), never the dom0 itself; under Xen no space
    either (``xl list`` prints names in a column)."""
    spaces = " " if hypervisor == "Xen" else ""
    if (
        not isinstance(domain, str)
        or not domain
        or domain.startswith(("-", "."))
        or domain == "Domain-0"
        or "/" in domain
        or any((char.isspace() and spaces) or not char.isprintable() for char in domain)
    ):
        raise OperationValueError(
            f"domain {domain!r} is not a guest's {hypervisor} domain name: give a non-empty "
            f"name without {'spaces, ' if spaces else ''}'/' nor control characters, not "
            "starting with '-' or '.' (nor Domain-0)"
        )
    return domain


def check_timeout(label: str, value: object) -> int:
    """A positive whole number of seconds."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OperationValueError(f"{label} must be a positive number of seconds, not {value!r}")
    return value


def check_port(port: object) -> int:
    """A TCP port, 1 to 65535 (never a bool)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise OperationValueError(f"not a TCP port: {port!r}")
    return port
