"""One guest at a time: ``--limit move_<guest>`` brings in the guest, its dom0 and its
destination, and the deploy's moves are exactly that guest's."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from pyinfra.api import Inventory
from pyinfra_cli.cli import _get_inventory_pattern_matches

from xen2kvm.errors import InventoryError
from xen2kvm.inventory import NAME_RE, load_fleet, move_group, parse_fleet
from xen2kvm.pyinfra_inventory import fleet_groups, selected_guests

ROOT = Path(__file__).resolve().parents[2]
PROD = ROOT / "inventory" / "prod.yml"
LAB = ROOT / "inventory" / "lab.yml"


def _members(path: Path) -> dict[str, list[str]]:
    groups = load_fleet(path).pyinfra_groups()
    return {group: [name for name, _data in hosts] for group, hosts in groups.items()}


def test_a_guests_group_holds_its_dom0_its_kvm_host_and_itself():
    assert _members(PROD)["move_www_example_net"] == [
        "xen-a.example.net",
        "kvm-a.example.net",
        "www.example.net",
    ]


def test_a_rehomed_guests_group_holds_both_dom0s():
    assert _members(LAB)["move_legacy2"] == ["xen1", "xen2", "legacy2"]


@pytest.mark.parametrize("path", [PROD, LAB], ids=["prod", "lab"])
def test_every_guest_has_one_group(path):
    fleet = load_fleet(path)
    groups = _members(path)
    assert {g for g in groups if g.startswith("move_")} == {move_group(n) for n in fleet.guests}


@pytest.mark.parametrize("name", ["www.example.net", "a-b.c", "web1"])
def test_a_group_name_is_never_a_host_name_and_is_an_identifier(name):
    group = move_group(name)
    assert not NAME_RE.match(group)
    assert group.isidentifier()


def test_two_guests_with_the_same_group_are_refused():
    raw = yaml.safe_load(PROD.read_text())
    raw = copy.deepcopy(raw)
    twin = dict(raw["guests"]["www.example.net"], address="203.0.113.150", ips=[])
    twin["xen_config"] = "/etc/xen/twin.cfg"
    twin["target_lv"] = "twin"
    twin["domain_name"] = "twin"
    raw["guests"]["www-example.net"] = twin
    with pytest.raises(InventoryError) as info:
        parse_fleet(raw, "prod.yml")
    assert "www-example.net: name: www-example.net (group move_www_example_net) is already" in str(
        info.value
    )
    assert "two guests cannot share a --limit group" in str(info.value)


@pytest.mark.parametrize(
    ("path", "guest"),
    [(PROD, "www.example.net"), (LAB, "legacy2")],
    ids=["kvm", "rehome"],
)
def test_limit_on_the_group_selects_exactly_that_guest(path, guest):
    """pyinfra's own --limit matching (groups first, then host names), then the
    deploy's selection (``tasks/move.py`` asks ``selected_guests``)."""
    groups = fleet_groups(path)
    hosts = {name: data for members in groups.values() for name, data in members}
    inventory = Inventory(
        (list(hosts.items()), {}), **{name: (members, {}) for name, members in groups.items()}
    )
    limit = _get_inventory_pattern_matches(inventory, [move_group(guest)], "--limit")
    g = load_fleet(path).guests[guest]
    assert {h.name for h in limit} == {g.name, g.xen_host, g.kvm_host or g.rehome_to}
    for one in limit:  # every host of the run sees the same one move
        host = SimpleNamespace(
            name=one.name, data=one.data, state=SimpleNamespace(limit_hosts=limit)
        )
        assert [s.name for s in selected_guests(host)] == [guest]
