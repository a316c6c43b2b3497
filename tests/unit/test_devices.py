"""xen2kvm.devices: the names an LV goes by, and where kpartx maps its partitions."""

from __future__ import annotations

import pytest

from xen2kvm.devices import device_aliases, mapping_path


@pytest.mark.parametrize(
    ("device", "aliases"),
    [
        ("/dev/vg0/web1", {"/dev/vg0/web1", "/dev/mapper/vg0-web1"}),
        ("/dev/vg-0/web-1", {"/dev/vg-0/web-1", "/dev/mapper/vg--0-web--1"}),
        ("/dev/mapper/vg--0-web--1", {"/dev/mapper/vg--0-web--1", "/dev/vg-0/web-1"}),
        ("/dev/disk/by-id", {"/dev/disk/by-id"}),  # not a VG
        ("/dev/vda", {"/dev/vda"}),
    ],
)
def test_aliases(device, aliases):
    assert device_aliases(device) == aliases


def test_kpartx_names_partitions_after_the_mapper_name():
    assert mapping_path("/dev/vg0/captest-web1", 2) == "/dev/mapper/vg0-captest--web1p2"


def test_a_disk_that_is_not_an_lv_has_no_mapping():
    with pytest.raises(ValueError, match="not an LV path"):
        mapping_path("/dev/vda", 1)
