"""The one polling helper that verify/ and the tests use."""

from __future__ import annotations

from xen2kvm.waiting import wait_until


def test_true_once_the_check_holds():
    calls = []
    assert wait_until(lambda: calls.append(1) or len(calls) == 3, timeout=5, step=0.01) is True
    assert len(calls) == 3, "stops polling as soon as the check holds"


def test_false_when_the_time_is_up():
    calls = []
    assert wait_until(lambda: calls.append(1) or False, timeout=0.05, step=0.01) is False
    assert len(calls) >= 2, "polled until the time was up"


def test_the_check_runs_once_even_with_no_time():
    assert wait_until(lambda: True, timeout=0) is True
