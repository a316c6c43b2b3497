"""A bad fleet file as pyinfra shows it: the problems, without pyinfra's file-and-line prefix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from xen2kvm.errors import Xen2KvmError
from xen2kvm.pyinfra_inventory import FleetRefused, fleet_groups

ROOT = Path(__file__).resolve().parents[2]
BAD = ROOT / "tests" / "data" / "fleets" / "bad"


def _inventory_py(tmp_path: Path, fleet: Path) -> Path:
    inv = tmp_path / "bad.py"
    inv.write_text(
        "from xen2kvm.pyinfra_inventory import fleet_groups\n"
        f"globals().update(fleet_groups({str(fleet)!r}))\n"
    )
    return inv


def test_pyinfra_prints_the_problems_and_nothing_of_our_code(tmp_path):
    fleet = BAD / "kvm-vg-missing.yml"
    result = subprocess.run(
        [sys.executable, "-m", "pyinfra", str(_inventory_py(tmp_path, fleet)), "debug-inventory"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"--> pyinfra error: {fleet}: 1 problem(s), nothing was run:" in output, output
    assert "  - kvm1: vg: required" in output
    assert "pyinfra error in" not in output
    assert "Traceback" not in output


def test_the_refusal_is_also_a_xen2kvm_error_with_its_traceback():
    with pytest.raises(Xen2KvmError) as info:
        fleet_groups(BAD / "kvm-vg-missing.yml")
    assert isinstance(info.value, FleetRefused)
    assert info.tb is not None  # only pyinfra's reading of __traceback__ is spared it
    assert info.value.__traceback__ is None
