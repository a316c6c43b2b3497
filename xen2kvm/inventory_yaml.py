"""Reading a fleet file's YAML: bounded, so a broken or hostile file gives one clean error.

Why: the fleet file is edited by hand and may come from anywhere (a ticket, a generator,
a merge gone wrong). PyYAML alone turns some files into tracebacks (non-UTF-8 bytes, deep
nesting, a date like 2024-13-45) and expands anchors without limit: a "billion laughs"
file of a few hundred bytes becomes gigabytes. So before anything is built, the event
stream is walked once, iteratively, counting nesting depth and the nodes the aliases
expand to; only a file within the limits below is constructed, with a loader that
refuses a key written twice. Every error names the file and the line.
"""

from __future__ import annotations

from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml

from .errors import InventoryError
from .inventory_fields import shown

MAX_BYTES = 4 * 1024 * 1024  # 4 MiB: a fleet of 10000 guests fits in well under half
MAX_DEPTH = 32  # the schema nests 5 deep (section, host, field, mapping, value)
MAX_NODES = 500_000  # values after aliases expand: ~40 per host for 10000 hosts, and room


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that refuses a key written twice in one mapping.

    Plain ``yaml.safe_load`` keeps the last one silently: a guest listed twice would
    vanish without a word. Values PyYAML cannot build (``2024-13-45``, ``!!int x``) are
    errors at their line, not tracebacks.
    """

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, TypeError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read this value: {shown(str(exc))}", node.start_mark
            ) from None


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: dict[Any, int] = {}
    for key_node, _value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # <<: *common, merged by PyYAML below
            continue
        key = loader.construct_object(key_node)
        if not isinstance(key, Hashable):
            kind = "a list" if isinstance(key, list) else "a mapping"
            raise yaml.constructor.ConstructorError(
                None, None, f"a key must be a name, not {kind}", key_node.start_mark
            )
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {shown(key)} (first at line {seen[key] + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,  # type: ignore[arg-type]
)


class _TooBig(Exception):
    def __init__(self, message: str, mark: Any):
        super().__init__(message)
        self.message = message
        self.mark = mark


def read_fleet_yaml(path: str | Path) -> Any:
    """The parsed YAML of the fleet file at ``path``; ``InventoryError`` if it cannot be."""
    source = str(path)

    def refuse(field: str, message: str) -> InventoryError:
        return InventoryError(source, [("-", field, message)])

    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        raise refuse("file", f"cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise refuse(
            "file",
            f"larger than {MAX_BYTES // 1024 // 1024} MiB: a fleet file is never that big "
            "(is this the right file?)",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise refuse(
            "file",
            f"line {line}: byte 0x{data[exc.start]:02x} is not UTF-8: save the file as UTF-8",
        ) from None
    return parse_fleet_yaml(text, source)


def parse_fleet_yaml(text: str, source: str = "<inventory>") -> Any:
    """The parsed YAML of ``text``, within the limits; ``InventoryError`` naming the line."""
    try:
        _check_bounds(text)
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except _TooBig as exc:
        raise InventoryError(source, [("-", "yaml", _at(exc.mark, exc.message))]) from None
    except yaml.MarkedYAMLError as exc:
        raise InventoryError(source, [("-", "yaml", _marked(exc))]) from None
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, ...)
        line = text[: exc.position].count("\n") + 1
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        message = f"line {line}: the character U+{code:04X} is not allowed in YAML: remove it"
        raise InventoryError(source, [("-", "yaml", message)]) from None
    except yaml.YAMLError as exc:
        raise InventoryError(source, [("-", "yaml", _capped(str(exc)))]) from None


def _check_bounds(text: str) -> None:
    """Walk the events once: nesting depth and the size aliases expand to, both bounded."""
    sizes: dict[str, int] = {}  # anchor -> nodes it stands for
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, node count at its start)
    nodes = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            if len(open_nodes) >= MAX_DEPTH:
                raise _TooBig(f"nested more than {MAX_DEPTH} deep", event.start_mark)
            open_nodes.append((event.anchor, nodes))
            nodes += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, start = open_nodes.pop()
            if anchor is not None:
                sizes[anchor] = nodes - start
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in open_nodes):
                raise _TooBig(f"the alias *{event.anchor} refers to itself", event.start_mark)
            nodes += sizes.get(event.anchor, 1)  # an undefined one: the loader says so
        if nodes > MAX_NODES:
            raise _TooBig(
                f"the aliases (*name) expand to more than {MAX_NODES} values: "
                "write the values out, or refer to fewer",
                getattr(event, "start_mark", None),
            )


def _at(mark: Any, message: str) -> str:
    if mark is None:
        return message
    return f"line {mark.line + 1}, column {mark.column + 1}: {message}"


def _capped(text: str, most: int = 200) -> str:
    return text if len(text) <= most else text[: most - 3] + "..."


def _marked(exc: yaml.MarkedYAMLError) -> str:
    message = _at(exc.problem_mark, _capped(exc.problem or "cannot be read"))
    if exc.context and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    return message
