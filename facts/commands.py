"""
Facts about the commands a host has: what the plan checks before a wave changes anything.
"""

from __future__ import annotations

import re

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override

# A command name, or an absolute path: nothing a shell would read as more than a word.
NAME = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9_.+-]*|/[A-Za-z0-9_.+/-]+")
_LINE = re.compile(r"(missing|checked) (\S+)")


class CommandsMissing(FactBase[list]):
    """
    Which of ``names`` this host lacks: a name without ``/`` is looked up as the
    operations run it (``command -v``, in the PATH of pyinfra's shell), an absolute path
    must be an executable file (``test -x``). One line per missing name, then the count::

        missing kpartx
        missing /usr/lib/grub/i386-pc
        checked 5

    Gives the missing names, in the order asked: ``["kpartx", "/usr/lib/grub/i386-pc"]``.
    """

    default = list

    @override
    def command(self, names: list[str]) -> StringCommand:
        for name in names:
            if not isinstance(name, str) or not NAME.fullmatch(name):
                raise ValueError(f"not a command name nor an absolute path: {name!r}")
        return StringCommand(
            "n=0; for name in",
            *[QuoteString(name) for name in names],
            '; do n=$((n + 1)); case "$name" in /*) test -x "$name" ;;'
            ' *) command -v "$name" >/dev/null 2>&1 ;; esac || echo "missing $name"; done;'
            ' echo "checked $n"',
        )

    @override
    def process(self, output: list[str]) -> list:
        missing = []
        for line in output:
            found = _LINE.fullmatch(line.strip())
            if not found:
                raise FactProcessError(f"unexpected line from the command check: {line!r}")
            if found[1] == "checked":
                return missing
            missing.append(found[2])
        raise FactProcessError(f"the command check did not finish: {output!r}")
