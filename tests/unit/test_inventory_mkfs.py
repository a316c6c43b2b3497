"""The inventory's mkfs_options: extra mkfs options per filesystem type, for old guests."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from xen2kvm.errors import InventoryError
from xen2kvm.inventory import parse_fleet

PROD = Path(__file__).resolve().parents[2] / "inventory" / "prod.yml"
OLD = "-O ^metadata_csum,^64bit"


def _raw() -> dict:
    return copy.deepcopy(yaml.safe_load(PROD.read_text()))


def test_none_by_default():
    fleet = parse_fleet(_raw())
    assert all(guest.mkfs_options == {} for guest in fleet.guests.values())


def test_a_guest_sets_its_own():
    raw = _raw()
    raw["guests"]["lists.example.net"]["mkfs_options"] = {"ext4": OLD, "xfs": "-m crc=0"}
    fleet = parse_fleet(raw)
    assert fleet.guests["lists.example.net"].mkfs_options == {"ext4": OLD, "xfs": "-m crc=0"}
    assert fleet.guests["www.example.net"].mkfs_options == {}


def test_defaults_apply_and_a_guest_replaces_them_whole():
    raw = _raw()
    raw["defaults"]["mkfs_options"] = {"ext4": OLD}
    raw["guests"]["db.example.net"]["mkfs_options"] = {"xfs": "-m crc=0"}
    fleet = parse_fleet(raw)
    assert fleet.guests["www.example.net"].mkfs_options == {"ext4": OLD}
    assert fleet.guests["db.example.net"].mkfs_options == {"xfs": "-m crc=0"}


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        ("-O ^metadata_csum", "mkfs_options", "must map types to options"),
        ({"btrfs": "-f"}, "mkfs_options.btrfs", "not one of ext2, ext3, ext4, xfs, swap"),
        ({"ext4": ["-O", "^64bit"]}, "mkfs_options.ext4", "must be a string of options"),
        ({"ext4": "-E 'stride=16"}, "mkfs_options.ext4", "cannot be split like a shell would"),
        ({"ext4": "-U 1234"}, "mkfs_options.ext4", "sets the UUID and label itself"),
        ({"xfs": "-m uuid=1234"}, "mkfs_options.xfs", "sets the UUID and label itself"),
    ],
)
def test_bad_options_name_the_host_and_field(value, field, words):
    raw = _raw()
    raw["guests"]["lists.example.net"]["mkfs_options"] = value
    with pytest.raises(InventoryError) as info:
        parse_fleet(raw, "test.yml")
    matching = [p for p in info.value.problems if p[:2] == ("lists.example.net", field)]
    assert matching and words in matching[0][2], info.value.problems


def test_bad_defaults_name_each_guest():
    raw = _raw()
    raw["defaults"]["mkfs_options"] = {"ext4": 5}
    with pytest.raises(InventoryError) as info:
        parse_fleet(raw, "test.yml")
    hosts = {host for host, field, _ in info.value.problems if field == "mkfs_options.ext4"}
    assert hosts == set(raw["guests"])
