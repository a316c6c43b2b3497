"""tasks.move: a move's Xen domain is what its config names it (or the inventory's
xen_domain), not its inventory label."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from pyinfra.api.exceptions import OperationError

from tasks.move import xen_domain
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
