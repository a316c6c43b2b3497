"""xen2kvm.fleet_access: the inventory as the deploy sees it, the guests selected, and where
each move keeps its journal."""

from __future__ import annotations

from pathlib import Path

import pytest

from xen2kvm import fleet_access
from xen2kvm.errors import Xen2KvmError
from xen2kvm.paths import DOM0_STATE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lab() -> fleet_access.Inventory:
    return fleet_access.load_inventory(str(ROOT / "inventory/lab.py"))


def test_a_missing_inventory_is_a_xen2kvm_error(tmp_path):
    with pytest.raises(Xen2KvmError, match=r"nope\.py: no such file .*inventory/prod\.py"):
        fleet_access.load_inventory(str(tmp_path / "nope.py"))


def test_a_py_that_is_not_ours_says_how_to_build_one(tmp_path):
    other = tmp_path / "other.py"
    other.write_text("hosts = [('web1', {'ssh_user': 'x'})]\n")
    with pytest.raises(Xen2KvmError, match=r"not a xen2kvm inventory .*fleet_groups"):
        fleet_access.load_inventory(str(other))


def test_select_by_wave_and_guest(lab):
    names = [g.name for g in fleet_access.select_guests(lab.fleet, [1], [])]
    assert names == [g.name for g in lab.fleet.wave_guests(1)]
    assert [g.name for g in fleet_access.select_guests(lab.fleet, [], ["mail1.fleet.example"])] == [
        "mail1.fleet.example"
    ]


@pytest.mark.parametrize(
    ("waves", "names", "message"),
    [([], ["nope"], r"--guest nope: not in .*lab\.yml"), ([99], [], r"--wave 99: no such wave")],
)
def test_a_bad_selection_names_the_choices(lab, waves, names, message):
    with pytest.raises(Xen2KvmError, match=message):
        fleet_access.select_guests(lab.fleet, waves, names)


def test_a_kvm_move_keeps_its_journal_on_the_kvm_host(lab):
    web1 = lab.fleet.guests["web1"]
    assert fleet_access.destination(lab.fleet, web1) == (
        "kvm1",
        lab.fleet.kvm_hosts["kvm1"].state_dir,
    )


def test_a_rehome_keeps_its_journal_on_the_new_dom0(lab):
    assert fleet_access.destination(lab.fleet, lab.fleet.guests["legacy2"]) == ("xen2", DOM0_STATE)
