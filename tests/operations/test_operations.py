"""Every operation case under tests/operations/<module>.<op>/ (see tests/harness.py)."""

from __future__ import annotations

import pytest

from tests.harness import case_id, cases, load_case, run_operation

CASES = list(cases("operations"))


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
    assert commands == case["commands"]
    if not commands:
        assert host.noop_description, "an operation with nothing to do must say so (host.noop)"
    if "noop_description" in case:
        assert host.noop_description == case["noop_description"]


def test_every_operation_has_the_usual_cases():
    """Operations that manage state: create / already there / delete / quoting / bad argument.
    Checks (the preflight module) change nothing: ready / failing / bad argument."""
    by_op: dict[str, set[str]] = {}
    for target, path in CASES:
        by_op.setdefault(target, set()).add(path.stem)
    assert by_op, "no operation cases found"
    for target, names in by_op.items():
        kinds = {name.split("_")[0] for name in names}
        wanted = {"noop", "fail", "bad"} if target.startswith("preflight.") else {
            "add", "noop", "remove", "quote", "bad"}
        missing = wanted - kinds
        assert not missing, f"{target} lacks cases: {sorted(missing)}"
