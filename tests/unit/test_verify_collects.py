"""The verify suite imports and collects every check for the lab fleet without the lab
(it connects only when a check runs): a renamed import there is caught here, not on a
real fleet after a wave."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_verify_collects_for_every_lab_guest():
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "verify/", "--inventory", "inventory/lab.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    collected = result.stdout.splitlines()
    for guest in ("web1", "legacy1", "mail1", "legacy2"):
        assert any(f"[{guest}" in line for line in collected), f"no check for {guest}"
