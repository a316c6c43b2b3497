"""
Facts about a Debian system that pyinfra's own facts do not give.
"""

from __future__ import annotations

from pyinfra.api import FactBase
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override


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
