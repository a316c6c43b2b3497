"""Generated inventories: parse_fleet gives a Fleet or one clean InventoryError, nothing else.

Bounded so it runs in seconds: few examples, small structures, no example database.
For a longer hunt: XEN2KVM_FUZZ_EXAMPLES=20000 pytest tests/unit/test_inventory_fuzz.py
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xen2kvm.errors import InventoryError
from xen2kvm.inventory import Fleet, parse_fleet
from xen2kvm.inventory_schema import GUESTS, KVM_HOSTS, XEN_HOSTS
from xen2kvm.inventory_yaml import parse_fleet_yaml

PROD = Path(__file__).resolve().parents[2] / "inventory" / "prod.yml"
BASE = yaml.safe_load(PROD.read_text())
FUZZ = settings(
    max_examples=int(os.environ.get("XEN2KVM_FUZZ_EXAMPLES", "150")),
    deadline=1000,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(["", "eth0", "192.0.2.1", "::ffff:192.0.2.1", "fe80::1%eth0", "4G", "\n"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=12), st.integers()), inner, max_size=4),
    ),
    max_leaves=12,
)
KEYS = {
    "guests": (*GUESTS.keys, "colour"),
    "kvm_hosts": (*KVM_HOSTS.keys, "colour"),
    "xen_hosts": (*XEN_HOSTS.keys, "colour"),
}


def _clean(result: object) -> None:
    """A Fleet, or an InventoryError whose lines quote nothing whole."""
    if isinstance(result, InventoryError):
        assert result.problems
        assert all(len(line) < 1000 for line in str(result).splitlines())
    else:
        assert isinstance(result, Fleet)


def _parse(raw: object) -> object:
    try:
        return parse_fleet(raw, "fuzz.yml")
    except InventoryError as exc:
        return exc


@FUZZ
@given(values)
def test_any_structure(raw):
    _clean(_parse(raw))


@FUZZ
@given(
    section=st.sampled_from(sorted(KEYS)),
    data=st.data(),
    value=values,
)
def test_one_field_of_the_example_replaced(section, data, value):
    raw = copy.deepcopy(BASE)
    name = data.draw(st.sampled_from(sorted(raw[section])))
    key = data.draw(st.sampled_from(KEYS[section]))
    raw[section][name][key] = value
    _clean(_parse(raw))


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("ab: -[]{}&*!,'\"\n\t#?<>|%@`0.~")), max_size=80))
def test_any_text(text):
    try:
        raw = parse_fleet_yaml(text, "fuzz.yml")
    except InventoryError as exc:
        _clean(exc)
        return
    _clean(_parse(raw))
