"""Reading the fleet file's YAML: anchors and merge keys work, within limits."""

from __future__ import annotations

import pytest

from xen2kvm.errors import InventoryError
from xen2kvm.inventory_yaml import MAX_DEPTH, parse_fleet_yaml

COMMON = """\
guests:
  web1: &web {wave: 1, xen_host: xen1, kvm_host: kvm1, address: 192.0.2.101}
  db1:
    <<: *web
    address: 192.0.2.102
"""


def test_merge_keys_give_their_values_and_a_key_of_its_own_wins():
    raw = parse_fleet_yaml(COMMON, "f.yml")
    assert raw["guests"]["db1"] == {
        "wave": 1,
        "xen_host": "xen1",
        "kvm_host": "kvm1",
        "address": "192.0.2.102",
    }


def test_nesting_up_to_the_limit_is_read():
    depth = MAX_DEPTH - 1
    assert parse_fleet_yaml("x: " + "[" * depth + "]" * depth, "f.yml") is not None


def test_errors_say_the_line_not_a_unicode_string():
    with pytest.raises(InventoryError) as info:
        parse_fleet_yaml("guests:\n  web1: {wave: 1\n", "f.yml")
    ((host, field, message),) = info.value.problems
    assert (host, field) == ("-", "yaml")
    assert message.startswith("line 3, column 1: ")
    assert "<unicode string>" not in str(info.value)
    assert str(info.value).startswith("f.yml: ")
