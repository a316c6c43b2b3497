"""What the schema accepts and what it makes of it (the refusals are tests/data/fleets/bad)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from xen2kvm.inventory import parse_fleet
from xen2kvm.inventory_schema import SECTIONS

PROD = Path(__file__).resolve().parents[2] / "inventory" / "prod.yml"
BASE = yaml.safe_load(PROD.read_text())


def _guest(**settings):
    raw = copy.deepcopy(BASE)
    raw["guests"]["www.example.net"].update(settings)
    return parse_fleet(raw, "test.yml").guests["www.example.net"]


@pytest.mark.parametrize("memory", [4096, "4096", "4096M", "4G", "4GiB", "4194304K"])
def test_memory_is_mib_bare_or_with_a_unit(memory):
    assert _guest(memory=memory).memory_mib == 4096


@pytest.mark.parametrize(("memory", "mib"), [(16, 16), ("16T", 16 * 1024 * 1024)])
def test_memory_bounds_are_inclusive(memory, mib):
    assert _guest(memory=memory).memory_mib == mib


def test_vcpus_beyond_255_need_a_machine_other_than_pc():
    assert _guest(vcpus=300, machine="q35").vcpus == 300


def test_addresses_are_kept_in_their_short_form():
    guest = _guest(address="2001:DB8:0::101", ips=["2001:db8::101"])
    assert (guest.address, guest.ips) == ("2001:db8::101", ("2001:db8::101",))


def test_null_lists_and_mappings_are_empty():
    guest = _guest(macs=None, grow=None, mkfs_options=None, services=None)
    assert (guest.macs, guest.grow, guest.mkfs_options, guest.services) == ((), {}, {}, ())


def test_a_guest_may_say_it_has_no_mta_though_the_defaults_name_one():
    assert _guest(mta=None).mta is None


def test_each_key_is_in_one_row_of_its_section():
    for section in SECTIONS:
        assert len(section.keys) == len(set(section.keys)), section.key
        assert all(spec.meaning and spec.kind.name for spec in section.fields)


def test_a_kvm_host_maps_xen_bridges_to_its_own_and_maps_none_by_default():
    raw = copy.deepcopy(BASE)
    raw["kvm_hosts"]["kvm-a.example.net"]["bridges"] = {"xenbr0": "br0", "xenbr1": "br1"}
    fleet = parse_fleet(raw, "test.yml")
    assert fleet.kvm_hosts["kvm-a.example.net"].bridges == {"xenbr0": "br0", "xenbr1": "br1"}
    assert fleet.kvm_hosts["kvm-b.example.net"].bridges == {}
