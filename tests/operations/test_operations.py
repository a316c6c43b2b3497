"""Every operation case under tests/operations/<module>.<op>/ (see tests/harness.py)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import operations
from tests.harness import case_id, cases, load_case, run_operation

CASES = list(cases("operations"))
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("item", CASES, ids=[case_id(c) for c in CASES])
def test_operation_case(item):
    target, path = item
    case = load_case(path)
    expected_exception = case.get("exception")
    if expected_exception:
        with pytest.raises(Exception) as info:
            run_operation(target, case)
        assert type(info.value).__name__ == expected_exception["name"]
        assert expected_exception["message"] in str(info.value)
        return

    commands, host = run_operation(target, case)
    assert commands == [_expand(c) for c in case["commands"]]
    if not commands:
        assert host.noop_description, "an operation with nothing to do must say so (host.noop)"
    if "noop_description" in case:
        assert host.noop_description == case["noop_description"]


def _expand(command):
    """``[upload, "@path", dest]``: the upload's content is that repository file's."""
    if isinstance(command, list) and command[0] == "upload" and command[1].startswith("@"):
        return ["upload", (ROOT / command[1][1:]).read_text(), command[2]]
    return command


def _all_operations() -> dict[str, object]:
    found = {}
    for module_info in pkgutil.iter_modules(operations.__path__):
        module = importlib.import_module(f"operations.{module_info.name}")
        for attr, value in vars(module).items():
            inner = getattr(value, "_inner", None)
            if inner is not None and getattr(value, "__module__", "") == module.__name__:
                found[f"{module_info.name}.{attr}"] = inner
    return found


# Operations whose name is the state they leave, an absence (the unmounts of a tree in one
# command: mounting stays one mount point per operation, each checked once its parent is
# mounted).
ONLY_REMOVES = {"disk.unmounted"}


def wanted_kinds(target: str, inner: object) -> set[str]:
    """What cases an operation needs, by what it is."""
    if target.startswith("flow."):  # a point in the order: it only ever noops
        return {"noop", "bad"}
    if target.startswith("preflight."):  # a check: ready, failing, bad argument
        return {"noop", "fail", "bad"}
    if not inspect.signature(inner).parameters:  # nothing to quote or get wrong
        return {"add", "noop"}
    if not getattr(inner, "is_idempotent", True):  # a verb: it always runs
        return {"add", "quote", "bad"}
    if target in ONLY_REMOVES:  # its one state is an absence: nothing to add
        return {"remove", "noop", "quote", "bad"}
    # Manages state: create, already there, delete (or why not), quoting, bad argument.
    return {"add", "noop", "remove", "quote", "bad"}


@pytest.mark.parametrize("target", sorted(_all_operations()))
def test_every_operation_has_its_cases(target):
    inner = _all_operations()[target]
    kinds = {path.stem.split("_")[0] for t, path in CASES if t == target}
    missing = wanted_kinds(target, inner) - kinds
    assert not missing, f"{target} lacks cases: {sorted(missing)}"
