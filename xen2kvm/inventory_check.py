"""The loop that reads one inventory entry against its section's table of fields.

Why one loop: every key of every section is read the same way (given, else from
``defaults:``, else its default; then its kind's parser; then, for a host name, whether
that host is in the file), so how a default applies or a problem is worded is decided
here once. The tables themselves are in ``inventory_schema``; the kinds of value in
``inventory_fields``.

Rules that tie fields together run only when every field they need was read without a
problem, and a derived default whose source is wrong is left unsaid: one mistake is one
message, not one per field or guest it touches.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .inventory_fields import Bad, Kind, label, shown

REQUIRED: Any = object()
UNKNOWN: Any = object()  # a derived default whose source has a problem of its own


class Lookup:
    """What an entry's rules may see of the other sections: their keys and good values."""

    def __init__(self) -> None:
        self.raw_names: dict[str, set[Any]] = {}
        self.values: dict[str, dict[str, dict[str, Any]]] = {}

    def entry(self, section: str, name: Any) -> Mapping[str, Any]:
        return self.values.get(section, {}).get(name, {}) if isinstance(name, str) else {}


@dataclass(frozen=True)
class Derived:
    """A default made from the entry's other fields or the hosts it names."""

    text: str  # for the reference
    make: Callable[[str, Mapping[str, Any], Lookup], Any]  # may return UNKNOWN


@dataclass(frozen=True)
class Field:
    key: str
    kind: Kind
    meaning: str
    default: Any = REQUIRED
    nullable: bool = False  # null (~) is a value of its own: "none"
    from_defaults: bool = False  # may also stand in defaults:
    refers_to: str | None = None  # the section whose entries it names
    attr: str | None = None  # the dataclass attribute, when not the key


@dataclass(frozen=True)
class Rule:
    field: str  # where its problem is reported
    needs: tuple[str, ...]
    meaning: str  # for the reference
    check: Callable[[str, Mapping[str, Any], Lookup], str | None]


@dataclass(frozen=True)
class Section:
    key: str
    entry: str  # "a guest", for messages
    meaning: str
    fields: tuple[Field, ...]
    rules: tuple[Rule, ...] = field(default=())

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields)


Add = Callable[[str, str, str], None]


def unknown_keys(add: Add, host: str, data: Mapping, allowed: tuple[str, ...], what: str) -> set:
    """Report keys not in ``allowed``; return the allowed keys they were probably meant as."""
    meant = set()
    for key in data:
        if key in allowed:
            continue
        match = difflib.get_close_matches(str(key), allowed, n=1) if isinstance(key, str) else []
        hint = f" (did you mean {match[0]!r}?)" if match else ""
        meant.update(match)
        add(host, label(key), f"unknown {what}{hint}; {what}s here: {', '.join(allowed)}")
    return meant


def check_entry(
    section: Section,
    name: str,
    data: Mapping[Any, Any],
    defaults: Mapping[str, Any],
    lookup: Lookup,
    add: Add,
) -> dict[str, Any]:
    """Read one entry against its section's table: the values of the fields that are right."""
    meant = unknown_keys(add, name, data, section.keys, "key")
    values: dict[str, Any] = {}
    for spec in section.fields:
        origin = ""
        if spec.key in data:
            raw = data[spec.key]
        elif spec.from_defaults and spec.key in defaults:
            raw, origin = defaults[spec.key], " (from defaults:)"
        elif spec.default is REQUIRED:
            if spec.key not in meant:  # "adress": the unknown key's message says it
                add(name, spec.key, "required")
            continue
        elif isinstance(spec.default, Derived):
            raw = spec.default.make(name, values, lookup)
            if raw is UNKNOWN:  # what it is made from has a problem, said there
                continue
        else:
            raw = spec.default
        if spec.default is REQUIRED and raw in (None, ""):
            add(name, spec.key, "required")
            continue
        if raw is None and spec.nullable:
            values[spec.key] = None
            continue
        try:
            value = spec.kind.parse(raw)
            if spec.refers_to is not None and value not in lookup.raw_names[spec.refers_to]:
                known = lookup.raw_names[spec.refers_to]
                listed = ", ".join(sorted(map(str, known))[:10]) or "none"
                listed += ", ..." if len(known) > 10 else ""
                raise Bad(f"{shown(value)} is not in the inventory (known: {listed})")
        except Bad as exc:
            where = f"{spec.key}.{exc.sub}" if exc.sub else spec.key
            add(name, where, exc.message + origin)
            continue
        values[spec.key] = value
    for rule in section.rules:
        if all(key in values for key in rule.needs):
            message = rule.check(name, values, lookup)
            if message:
                add(name, rule.field, message)
    return values
