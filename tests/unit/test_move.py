"""tasks.move: a move's Xen domain is what its config names it (or the inventory's
xen_domain), not its inventory label; the live plan inputs read every ext LV's features."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from pyinfra.api.exceptions import OperationError

import tasks.move
from tasks.move import Move, xen_domain
from xen2kvm.inventory import load_fleet
from xen2kvm.planinputs import PlanInputs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def web1():
    return load_fleet(ROOT / "inventory" / "lab.yml").guests["web1"]


def inputs(config: str) -> PlanInputs:
    return PlanInputs(config, "/dev/xvda2 / ext4 defaults 0 1\n", {})


def test_the_config_names_the_domain_not_the_inventory(web1):
    guest = replace(web1, name="web1.fleet.example")
    config = "name = 'www'\nmemory = 512\ndisk = ['phy:/dev/xenvg/web1-root,xvda2,w']\n"
    assert xen_domain(guest, inputs(config)) == "www"


def test_a_config_without_a_name_is_refused(web1):
    config = "memory = 512\ndisk = ['phy:/dev/xenvg/web1-root,xvda2,w']\n"
    with pytest.raises(OperationError, match="sets no name: xl needs one"):
        xen_domain(web1, inputs(config))


def test_the_inventory_s_xen_domain_overrides_the_config(web1):
    # A domain renamed with ``xl rename``: its config still says its old name.
    guest = replace(web1, name="web1.fleet.example", xen_domain="web1-2019")
    config = "name = 'web1'\nmemory = 512\ndisk = ['phy:/dev/xenvg/web1-root,xvda2,w']\n"
    assert xen_domain(guest, inputs(config)) == "web1-2019"


def a_move(guest_migration=None, dom0_migration=None, dest_migration=None) -> Move:
    """A move with only its addresses: the guest, its dom0 and its destination."""
    return Move(
        guest=SimpleNamespace(address="203.0.113.101", migration_address=guest_migration),
        source=SimpleNamespace(address="203.0.113.11", migration_address=dom0_migration),
        xen_domain="www",
        to=None,
        dest="kvm-a",
        dest_spec=SimpleNamespace(address="203.0.113.21", migration_address=dest_migration),
        state_dir="/var/lib/xen2kvm",
        inputs=None,
        volumes=(),
        plan=None,
        fstab=(),
        records=(),
        migrated=False,
    )  # type: ignore[arg-type]


def test_without_a_migration_network_everything_goes_over_the_addresses():
    move = a_move()
    assert (move.guest_dialled, move.dom0_dialled) == ("203.0.113.101", "203.0.113.11")
    assert (move.address, move.dom0_address) == ("203.0.113.21", "203.0.113.21")


def test_the_final_copy_crosses_the_migration_network_the_warm_copies_do_not():
    # The field report's crossover cable: only the dom0 and the KVM host are on it.
    move = a_move(dom0_migration="10.255.0.11", dest_migration="10.255.0.21")
    assert move.dom0_dialled == "10.255.0.11"
    assert move.dom0_address == "10.255.0.21", "the dom0 sees the KVM host's cable address"
    assert (move.guest_dialled, move.address) == ("203.0.113.101", "203.0.113.21")


def test_a_guest_on_the_migration_network_is_copied_over_it():
    move = a_move(guest_migration="10.255.0.101", dest_migration="10.255.0.21")
    assert (move.guest_dialled, move.address) == ("10.255.0.101", "10.255.0.21")


# -- live_inputs: what the plan reads on the dom0 before anything changes -----------------

LIVE_CONFIG = (
    "name = 'web1'\nmemory = 512\ndisk = ['phy:/dev/xenvg/web1-root,xvda2,w', "
    "'phy:/dev/xenvg/web1-var,xvda3,w', 'phy:/dev/xenvg/web1-swap,xvda1,w']\n"
)
BLKID = {  # what BlkidFilesystems reads on each LV
    "/dev/xenvg/web1-root": {"TYPE": "ext4", "UUID": "5ab1e000-0000-4000-8000-00000000b002"},
    "/dev/xenvg/web1-var": {"TYPE": "ext3"},
    "/dev/xenvg/web1-swap": {"TYPE": "swap"},
}


def read_live(
    monkeypatch, guest, dumpe2fs: dict, missing: tuple[str, ...] = ()
) -> tuple[PlanInputs, list[tuple]]:
    """``live_inputs`` over fake hosts (lacking the commands ``missing``): its answer, and
    the facts it read (name, kwargs)."""
    asked: list[tuple] = []

    def fake_fact(host, cls, **kwargs):
        asked.append((host, cls.__name__, kwargs))
        if cls.__name__ == "XenConfigFile":
            return LIVE_CONFIG
        if cls.__name__ == "BlockDeviceSize":
            return 1 << 30
        if cls.__name__ == "BlkidFilesystems":
            return {kwargs["devices"]: BLKID[kwargs["devices"]]}
        if cls.__name__ == "CommandsMissing":
            return [name for name in kwargs["names"] if name in missing]
        if cls.__name__ == "Dumpe2fsFeatures":
            assert "dumpe2fs" not in missing, "dumpe2fs run where it is missing"
            return dumpe2fs
        if cls.__name__ == "FileContents":
            return ["/dev/xvda2 / ext4 defaults 0 1"]
        raise AssertionError(f"unexpected fact {cls.__name__}")

    monkeypatch.setattr(tasks.move, "fact", fake_fact)
    monkeypatch.setattr(tasks.move, "inventory", SimpleNamespace(get_host=lambda name: name))
    return tasks.move.live_inputs(guest), asked


def test_the_ext_lvs_features_are_read_with_one_command(monkeypatch, web1):
    listed = {
        "/dev/xenvg/web1-root": ["has_journal", "extent", "needs_recovery"],
        "/dev/xenvg/web1-var": ["has_journal", "ext_attr"],
    }
    inputs, asked = read_live(monkeypatch, web1, listed)
    reads = [(host, kwargs) for host, name, kwargs in asked if name == "Dumpe2fsFeatures"]
    assert reads == [(web1.xen_host, {"devices": ["/dev/xenvg/web1-root", "/dev/xenvg/web1-var"]})]
    assert inputs.features == listed  # as listed: the planner drops the states


def test_an_ext_lv_dumpe2fs_did_not_list_stops_the_plan(monkeypatch, web1):
    # The fact failed (its error logged on the dom0): never mkfs's defaults instead.
    with pytest.raises(OperationError, match=r"listed no features for /dev/xenvg/web1-var"):
        read_live(monkeypatch, web1, {"/dev/xenvg/web1-root": ["has_journal"]})


def test_without_dumpe2fs_the_features_stay_unread_for_the_commands_check(monkeypatch, web1):
    # The plan phase's commands check names "xen1: dumpe2fs is missing: apt-get install
    # e2fsprogs" beside what else is missing; reading the inputs must not fail first.
    inputs, asked = read_live(monkeypatch, web1, {}, missing=("dumpe2fs",))
    assert inputs.features is None
    assert "Dumpe2fsFeatures" not in [name for _host, name, _kwargs in asked]
