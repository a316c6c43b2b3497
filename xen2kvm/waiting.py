"""Polling for a condition that comes true in its own time (a mail delivered, a line in a
log, a host answering); the caller asserts on the answer and says what it waited for."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(check: Callable[[], bool], timeout: float, step: float = 0.5) -> bool:
    """Call ``check`` every ``step`` seconds until it returns true (True) or ``timeout``
    seconds have passed (False). ``check`` runs at least once."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
