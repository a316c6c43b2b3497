"""
Facts about a Debian system that pyinfra's own facts do not give.
"""

from __future__ import annotations

import re
import shlex

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override

from xen2kvm.guestkinds import DPKG_GONE

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


# Debian package names (Debian Policy 5.6.1): the only words the fact's command holds.
_PACKAGE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
_STATE = re.compile(r"[a-z]+(-[a-z]+)*")


class DpkgPackageStates(FactBase[dict]):
    """
    The dpkg state of each of ``packages`` the system knows (``installed``,
    ``config-files``, ``unpacked``, ...: the last word of its ``Status:``), read from
    ``/var/lib/dpkg/status`` as a text file (no package tool runs); a package dpkg never
    had is absent. A package listed for two architectures counts as there when either
    has its files.

    .. code:: python

        {"dracut": "installed", "dracut-core": "installed"}

    Sample output::

        dracut-core installed
        dracut installed
    """

    default = dict

    @override
    def requires_command(self, packages: list[str]) -> str:
        return "awk"

    @override
    def command(self, packages: list[str]) -> str:
        if not packages or not all(_PACKAGE.fullmatch(str(name)) for name in packages):
            raise ValueError(f"not a list of Debian package names: {packages!r}")
        names = shlex.quote(f" {' '.join(packages)} ")
        script = shlex.quote(
            '/^Package: /{p=$2} /^$/{p=""} '
            '/^Status: /{if (p != "" && index(names, " " p " ")) print p, $NF}'
        )
        status = "/var/lib/dpkg/status"
        return f"if [ -r {status} ]; then awk -v names={names} {script} {status}; fi"

    @override
    def process(self, output: list[str]) -> dict:
        states: dict[str, str] = {}
        for line in output:
            words = line.split()
            # A state is one of dpkg's words (half-installed, config-files ...): the guest's
            # file may hold anything, and the state reaches the plan's message.
            if (
                len(words) != 2
                or not _PACKAGE.fullmatch(words[0])
                or not _STATE.fullmatch(words[1])
            ):
                raise FactProcessError(f"unexpected line in dpkg's status: {line!r}")
            name, state = words
            if states.get(name) not in (None, *DPKG_GONE):  # one architecture's files are there
                continue
            states[name] = state
        return states
