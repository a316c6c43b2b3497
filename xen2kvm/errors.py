"""One small exception hierarchy for everything xen2kvm reports to an operator.

Every message names where the problem is (a file and line, or a host and field) and,
where there is one, the fix.
"""

from __future__ import annotations


class Xen2KvmError(Exception):
    """Base class: an error the operator can act on."""


class XenConfigError(Xen2KvmError):
    """A Xen domain config file that cannot be parsed or makes no sense."""

    def __init__(self, filename: str, line: int | None, key: str | None, message: str):
        self.filename = filename
        self.line = line
        self.key = key
        self.message = message
        where = filename if line is None else f"{filename}:{line}"
        what = f" key {key!r}:" if key else ""
        super().__init__(f"{where}:{what} {message}")

    @property
    def located(self) -> str:
        """The command line's form: ``FILE: line N: key 'k': message``."""
        where = self.filename if self.line is None else f"{self.filename}: line {self.line}"
        what = f" key {self.key!r}:" if self.key else ""
        return f"{where}:{what} {self.message}"


class SizeError(Xen2KvmError, ValueError):
    """A size string that cannot be read."""


class InventoryError(Xen2KvmError):
    """The fleet inventory has one or more problems; all are listed at once."""

    def __init__(self, source: str, problems: list[tuple[str, str, str]]):
        # problems: (host, field, message)
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} problem(s), nothing was run:"]
        lines += [f"  - {host}: {field}: {msg}" for host, field, msg in problems]
        super().__init__("\n".join(lines))


class PlanError(Xen2KvmError):
    """A guest cannot be planned (sizes, layout, devices)."""

    def __init__(self, guest: str, field: str, message: str):
        self.guest = guest
        self.field = field
        super().__init__(f"{guest}: {field}: {message}")


class OutputError(Xen2KvmError):
    """A file xen2kvm was asked to write cannot be written; nothing was written."""

    def __init__(self, path: str, message: str):
        self.path = path
        super().__init__(f"{path}: {message}")
