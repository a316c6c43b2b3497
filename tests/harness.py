"""Data-driven tests for facts and operations, the way pyinfra tests itself.

Operation cases: ``tests/operations/<module>.<op>/<case>.yaml``::

    args: [...]            # positional arguments of the operation
    kwargs: {...}          # keyword arguments
    data: {...}            # host.data (optional)
    facts:                 # what each fact returns on the fake host
      xen.XenAutostart: {...}
      xen.XenConfigFile:   # a fact with arguments: one entry per canonical argument string
        "path=/etc/xen/a.cfg": {...}
    commands: [...]        # the exact commands, in order (strings; uploads as [upload, text, dest])
    noop_description: ...  # when nothing is to be done
    executing: false       # plan as --dry does (before earlier operations ran); default true
    hosts:                 # other hosts whose facts the operation reads (inventory.get_host)
      xen1: {facts: {...}}
    failed:                # hosts that failed earlier in the run (state.failed_hosts)
      - {name: kvm1, role: kvm_host, connected: true}
    exception: {name: OperationValueError, message: "..."}   # (substring of the message)

Fact cases: ``tests/facts/<module>.<Fact>/<case>.yaml``::

    arg: {...}             # keyword arguments of the fact (optional)
    command: ...           # the exact command the fact runs
    requires_command: ...  # (optional)
    output: |              # what that command printed on a real host
      ...
    fact: ...              # what process() must return

Every operation case runs the generator twice and checks both runs yield the same
commands (pyinfra 3 runs each generator twice: they must have no side effects).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import yaml
from pyinfra.api import FileUploadCommand, FunctionCommand, StringCommand
from pyinfra.api.util import get_kwargs_str
from pyinfra.context import ctx_host, ctx_inventory, ctx_state

TESTS = Path(__file__).resolve().parent


class FakeHost:
    """Enough of ``pyinfra.api.Host`` for an operation's generator."""

    def __init__(self, name: str, facts: dict[str, Any], data: dict[str, Any]):
        self.name = name
        self.facts = facts
        self.data = _Data(data)
        self.noop_description: str | None = None
        self.current_op_global_arguments: dict[str, Any] = {}

    def noop(self, description: str) -> None:
        self.noop_description = description

    def get_temp_filename(self, *_args: Any, **_kwargs: Any) -> str:
        return "_tempfile_"

    def get_fact(self, fact_cls: type, *args: Any, **kwargs: Any) -> Any:
        key = f"{fact_cls.__module__.split('.')[-1]}.{fact_cls.__name__}"
        if key not in self.facts:
            raise KeyError(f"the case gives no fact {key}")
        value = self.facts[key]
        if args or kwargs:
            arg_key = canonical_args(args, kwargs)
            if arg_key not in value:  # as pyinfra shows them (a value with ", " stays whole)
                arg_key = get_kwargs_str(kwargs) if kwargs and not args else arg_key
            if arg_key not in value:
                raise KeyError(f"the case gives no fact {key} for {arg_key!r}")
            return value[arg_key]
        return value


class _Data(dict):
    """host.data: attribute access with None for what is missing, like pyinfra's."""

    def __getattr__(self, key: str) -> Any:
        return self.get(key)


class FakeInventory:
    """The other hosts an operation may ask for facts (``inventory.get_host``)."""

    def __init__(self, hosts: dict[str, FakeHost]):
        self.hosts = hosts

    def get_host(self, name: str) -> FakeHost:
        if name not in self.hosts:
            raise KeyError(f"the case gives no host {name}")
        return self.hosts[name]


class _FailedHost:
    """A host that failed earlier in the run: its name, role and whether it had connected."""

    def __init__(self, name: str, role: str, connected: bool):
        self.name = name
        self.data = _Data({"x2k_role": role})
        self.connected = connected


class FakeState:
    """Enough of ``pyinfra.api.State`` for operations that look at the state."""

    def __init__(self) -> None:
        from pyinfra.api import Config, Inventory

        self.inventory = Inventory(([], {}))
        self.config = Config()
        self.print_noop_info = False
        self.is_executing = True  # as when pyinfra runs the operation for real
        self.cwd = str(TESTS.parent)
        self.failed_hosts: set[Any] = set()

    def get_temp_filename(self, *_args: Any, **_kwargs: Any) -> str:
        return "_tempfile_"


def canonical_args(args: tuple, kwargs: dict[str, Any]) -> str:
    parts = [str(arg) for arg in args]
    if kwargs:
        parts.append(", ".join(sorted(get_kwargs_str(kwargs).split(", "))))
    return ", ".join(parts)


def command_repr(command: Any) -> Any:
    if isinstance(command, str):
        return command.strip()
    if isinstance(command, StringCommand):
        return command.get_raw_value()
    if isinstance(command, FileUploadCommand):
        src = command.src
        if isinstance(src, StringIO):
            text = src.getvalue()
        elif hasattr(src, "read"):
            src.seek(0)
            text = src.read()
            text = text.decode() if isinstance(text, bytes) else text
        elif Path(str(src)).is_file():  # a local file: what it holds is what is uploaded
            data = Path(str(src)).read_bytes()
            try:
                text = data.decode()
            except UnicodeDecodeError:  # a package: named, not shown
                text = f"<binary {Path(str(src)).name}>"
        else:
            text = str(src)
        return ["upload", text, command.dest]
    if isinstance(command, FunctionCommand):
        return ["function", command.function.__name__]
    raise TypeError(f"unknown command type: {command!r}")


def cases(kind: str) -> Iterator[tuple[str, Path]]:
    """(``module.Name``, case file) pairs under ``tests/<kind>/``."""
    for directory in sorted((TESTS / kind).iterdir()):
        if directory.is_dir() and "." in directory.name:
            for case in sorted(directory.glob("*.yaml")):
                yield directory.name, case


def case_id(item: tuple[str, Path]) -> str:
    return f"{item[0]}/{item[1].stem}"


def load_case(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def _data(data: dict[str, Any]) -> dict[str, Any]:
    """Host data; ``@path`` values name a file of this repository (absolute when run)."""
    return {
        key: str(TESTS.parent / value[1:]) if isinstance(value, str) and value[:1] == "@" else value
        for key, value in data.items()
    }


def run_operation(target: str, case: dict[str, Any]) -> tuple[list[Any], FakeHost]:
    """Run ``operations.<module>.<op>`` against the case's facts; return commands and host."""
    module_name, op_name = target.split(".")
    op = getattr(importlib.import_module(f"operations.{module_name}"), op_name)
    runs = []
    host = FakeHost("testhost", case.get("facts") or {}, _data(case.get("data") or {}))
    others = {
        name: FakeHost(name, (spec or {}).get("facts") or {}, _data((spec or {}).get("data") or {}))
        for name, spec in (case.get("hosts") or {}).items()
    }
    fake_inventory = FakeInventory({"testhost": host, **others})
    for _ in range(2):
        host.noop_description = None
        state = FakeState()
        state.is_executing = case.get("executing", True)
        state.failed_hosts = {
            _FailedHost(f["name"], f.get("role", "guest"), f.get("connected", True))
            for f in case.get("failed", [])
        }
        host.state = state
        for other in others.values():
            other.state = state
        with ctx_host.use(host), ctx_state.use(state), ctx_inventory.use(fake_inventory):
            generator = op._inner(*case.get("args", []), **case.get("kwargs", {}))
            runs.append([command_repr(c) for c in generator])
    assert runs[0] == runs[1], f"the generator is not repeatable: {runs}"
    return runs[0], host


def run_fact(target: str, case: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(the fact's command, its processed output, requires_command) for the case."""
    module_name, fact_name = target.split(".")
    fact_cls = getattr(importlib.import_module(f"facts.{module_name}"), fact_name)
    fact = fact_cls()
    kwargs = case.get("arg") or {}
    command = fact.command(**kwargs)
    command = command.get_raw_value() if isinstance(command, StringCommand) else command
    requires = fact.requires_command(**kwargs) if hasattr(fact, "requires_command") else None
    output = case.get("output", "")
    lines = output.splitlines() if isinstance(output, str) else list(output)
    return command, fact.process(lines), requires
