"""The whole suite's order: the tests that need no lab first, in their usual order, then
the lab's (``-m lab``), in theirs (their modules build on one another's lab state).

When lab tests are selected and the lab is not skipped, ``xen2kvm lab up`` starts in the
background once the tests are collected, so that the lab comes up (on a fresh machine:
is built) while the others run; the lab's fixtures wait for it (``tests/lab/conftest.py``).
"""

from __future__ import annotations

import pytest

from tests.lab.conftest import lab_skip_reason, start_lab_up, stop_lab_up


def _needs_lab(item: pytest.Item) -> bool:
    return item.get_closest_marker("lab") is not None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_needs_lab)  # stable: each group keeps its order


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly or lab_skip_reason() is not None:
        return
    if any(_needs_lab(item) for item in session.items):
        started = start_lab_up(session.config)
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"xen2kvm lab up: started beside the tests (log: {started.log})")


def pytest_sessionfinish(session: pytest.Session) -> None:
    stop_lab_up(session.config)
