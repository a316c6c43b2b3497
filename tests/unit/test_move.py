"""tasks.move: a move's Xen domain is what its config names it (or the inventory's
xen_domain), not its inventory label."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
from pyinfra.api.exceptions import OperationError

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
