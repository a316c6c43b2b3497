"""
Facts about the kernel modules a guest holds for a kernel it does not install itself:
the dom0's kernel that a PV guest boots with (see ``operations/kernel.py``).
"""

from __future__ import annotations

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override

from xen2kvm.rehome import check_release


class KernelModules(FactBase[dict]):
    """
    The modules a guest holds for one kernel release: the dpkg packages that ship
    ``/lib/modules/<release>`` (``linux-modules-<release>`` or ``linux-image-<release>``)
    with their versions and architectures, and whether that directory exists.

    .. code:: python

        {
            "directory": True,
            "packages": {"linux-modules-6.1.0-35-amd64": {"version": "6.1.137-1",
                                                          "arch": "amd64"}},
        }

    Sample output (``dpkg-query -W`` of both names, then the directory test)::

        linux-modules-6.1.0-35-amd64\tinstall ok installed\t6.1.137-1\tamd64
        dir:yes
    """

    @override
    def requires_command(self, release: str) -> str:
        return "dpkg-query"

    @override
    def command(self, release: str) -> StringCommand:
        check_release(release)
        names = [QuoteString(f"linux-{kind}-{release}") for kind in ("modules", "image")]
        query = QuoteString("${Package}\\t${Status}\\t${Version}\\t${Architecture}\\n")
        return StringCommand(
            "dpkg-query -W -f",
            query,
            *names,
            "2>/dev/null; if test -d",
            QuoteString(f"/lib/modules/{release}"),
            "; then echo dir:yes; else echo dir:no; fi",
        )

    @override
    def process(self, output: list[str]) -> dict:
        found: dict = {"directory": None, "packages": {}}
        for line in output:
            if line in ("dir:yes", "dir:no"):
                found["directory"] = line == "dir:yes"
                continue
            fields = line.split("\t")
            if len(fields) != 4:
                raise FactProcessError(f"unexpected line in dpkg-query output: {line!r}")
            name, status, version, arch = fields
            if status.endswith(" installed") and version:
                found["packages"][name] = {"version": version, "arch": arch}
        if found["directory"] is None:
            raise FactProcessError(f"no answer about /lib/modules: {output!r}")
        return found
