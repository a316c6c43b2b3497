"""Every fact case under tests/facts/<module>.<Fact>/ (see tests/harness.py).

The outputs were captured from real hosts (the lab's, unless the case says otherwise).
"""

from __future__ import annotations

import pytest

from tests.harness import case_id, cases, load_case, run_fact

CASES = list(cases("facts"))


@pytest.mark.parametrize("item", CASES, ids=[case_id(c) for c in CASES])
def test_fact_case(item):
    target, path = item
    case = load_case(path)
    if "exception" in case:
        with pytest.raises(Exception) as info:
            run_fact(target, case)
        assert type(info.value).__name__ == case["exception"]["name"]
        assert case["exception"]["message"] in str(info.value)
        return
    command, fact, requires = run_fact(target, case)
    assert command == case["command"]
    assert fact == case["fact"]
    if "requires_command" in case:
        assert requires == case["requires_command"]
