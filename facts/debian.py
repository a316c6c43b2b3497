"""
Facts about a Debian system that pyinfra's own facts do not give.
"""

from __future__ import annotations

import re
import shlex

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override

_OS_RELEASE_KEY = re.compile(r"[A-Z][A-Z0-9_]*")


class DebianArchitecture(FactBase[str]):
    """
    The dpkg architecture of the userland (``amd64``, ``i386``): what decides the kernel
    package, whatever kernel the system runs on now (a 32-bit domU on a 64-bit dom0 says
    ``i386`` here and ``x86_64`` in ``uname -m``).
    """

    @override
    def requires_command(self) -> str:
        return "dpkg"

    @override
    def command(self) -> str:
        return "dpkg --print-architecture"

    @override
    def process(self, output: list[str]) -> str:
        arch = "".join(output).strip()
        if not arch or " " in arch:
            raise FactProcessError(f"unexpected dpkg architecture: {output!r}")
        return arch


class OsRelease(FactBase[dict]):
    """
    The keys of the system's ``/etc/os-release`` (``/usr/lib/os-release`` where that is
    missing), unquoted as a shell would; empty when it has neither. What tells Debian
    from Ubuntu (``ID``) and one Debian release from another (``VERSION_ID``; testing has
    only ``VERSION_CODENAME``).

    .. code:: python

        {"PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)", "NAME": "Debian GNU/Linux",
         "VERSION_ID": "12", "VERSION": "12 (bookworm)", "VERSION_CODENAME": "bookworm",
         "ID": "debian", ...}

    Sample output::

        PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
        NAME="Debian GNU/Linux"
        VERSION_ID="12"
        VERSION="12 (bookworm)"
        VERSION_CODENAME=bookworm
        ID=debian
    """

    default = dict

    @override
    def command(self) -> str:
        return "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null || true"

    @override
    def process(self, output: list[str]) -> dict:
        found: dict[str, str] = {}
        for line in output:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, value = line.partition("=")
            if not sep or not _OS_RELEASE_KEY.fullmatch(key):
                raise FactProcessError(f"unexpected line in os-release: {line!r}")
            try:
                words = shlex.split(value)
            except ValueError as error:
                raise FactProcessError(f"unexpected value in os-release: {line!r}") from error
            found[key] = " ".join(words)
        return found
