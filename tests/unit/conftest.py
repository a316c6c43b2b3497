"""Shared fixtures for the pure-logic tests: the example fleet and one planned guest."""

from __future__ import annotations

from pathlib import Path

import pytest

from xen2kvm.fstab import parse_fstab
from xen2kvm.inventory import Fleet, load_fleet
from xen2kvm.planner import GuestPlan, plan_guest, source_volumes
from xen2kvm.units import GIB, MIB
from xen2kvm.xenconfig import XenDomain, load_xen_config

ROOT = Path(__file__).resolve().parents[2]
GUESTS = ROOT / "tests" / "data" / "guests"

# What blockdev --getsize64 reports on the dom0 for www.example.net's LVs.
WWW_SIZES = {
    "/dev/vg0/www.example.net-swap": 512 * MIB,
    "/dev/vg0/www.example.net-disk": 4 * GIB,
    "/dev/vg0/www.example.net-var": 8 * GIB + 3 * MIB,  # not a multiple of the extent
    "/dev/vg0/www.example.net-srv": 20 * GIB,
    "/dev/vg0/www.example.net-home": 2 * GIB,
}


@pytest.fixture(scope="session")
def fleet() -> Fleet:
    return load_fleet(ROOT / "inventory" / "prod.yml")


@pytest.fixture(scope="session")
def www_domain() -> XenDomain:
    return load_xen_config(GUESTS / "www.example.net.cfg")


@pytest.fixture(scope="session")
def www_fstab():
    return parse_fstab((GUESTS / "www.example.net.fstab").read_text())


@pytest.fixture(scope="session")
def www_plan(fleet, www_domain, www_fstab) -> GuestPlan:
    guest = fleet.guests["www.example.net"]
    volumes = source_volumes(guest.name, www_domain, www_fstab, WWW_SIZES)
    return plan_guest(guest, fleet.kvm_hosts[guest.kvm_host], www_domain, volumes)
