"""Output that one command prints for several things, each after a header line of its own
(``<header> <name>``), read back per thing: facts that read many files or devices in one
command use it."""

from __future__ import annotations

from pyinfra.api.exceptions import FactProcessError


def sections(output: list[str], header: str, what: str) -> dict[str, list[str]]:
    """``{name: its lines}`` from output where each thing's lines follow ``header name``;
    a non-blank line before the first header is an error naming ``what`` was read.

    **Example:** ``sections(["#X a", "1", "#X b"], "#X", "journal")`` is
    ``{"a": ["1"], "b": []}``.
    """
    found: dict[str, list[str]] = {}
    lines: list[str] | None = None
    for line in output:
        if line.startswith(f"{header} "):
            lines = found.setdefault(line[len(header) + 1 :], [])
        elif lines is not None:
            lines.append(line)
        elif line.strip():
            raise FactProcessError(f"{what} output before any name: {line[:80]!r}")
    return found
