"""``xen2kvm plan INVENTORY``: what the deploy derives from the inventory alone, offline."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tests.unit.test_cli_convert_inventory import LAB, LAB_KVM_GUESTS, _deploy_plan
from xen2kvm import cli
from xen2kvm.cli_plan import deploy_inventory
from xen2kvm.fleet_plan import overview, rows
from xen2kvm.inventory import load_fleet

ROOT = Path(__file__).resolve().parents[2]
PROD = ROOT / "inventory" / "prod.yml"


@pytest.mark.parametrize("name", LAB_KVM_GUESTS)
def test_plan_shows_the_deploys_disk_domain_and_kernel(name):
    _text, plan = _deploy_plan(name)
    fleet = load_fleet(LAB)
    item = overview(fleet, fleet.guests[name])
    shown = (item.target, item.domain_name, item.layout, item.guest_vg, item.kernel_package)
    assert shown == (
        plan.disk_path,
        plan.domain.name,
        plan.layout,
        plan.guest_vg,
        plan.kernel_package,
    )
    assert item.bridge == plan.domain.nics[0].bridge


def test_plan_table_names_every_value(capsys):
    assert cli.main(["plan", str(ROOT / "inventory" / "prod.py"), "--guest", "db.example.net"]) == 0
    out = capsys.readouterr().out
    for line in (
        "db.example.net (wave 2)",
        "from               xen-a.example.net:/etc/xen/db.example.net.cfg",
        "to                 KVM host kvm-b.example.net",
        "state dir          kvm-b.example.net:/var/lib/xen2kvm",
        "disk               /dev/vg_guests/db.example.net (matryoshka: /boot on p1, guest VG db",
        "NICs               from the Xen config (its vifs and MACs), on bridge br0",
        "memory             4096 MiB",
        "vCPUs              4",
        "arch               amd64, kernel linux-image-amd64",
        "limit              --limit move_db_example_net",
        "deploy.py --limit move_db_example_net --data phase=plan",
    ):
        assert line in out, out


def test_plan_shows_where_each_xen_bridge_goes():
    fleet = load_fleet(PROD)
    kvm = fleet.kvm_hosts["kvm-b.example.net"]
    mapped = dataclasses.replace(kvm, bridges={"xenbr0": "br0", "xenbr1": "br1"})
    fleet = dataclasses.replace(fleet, kvm_hosts={**fleet.kvm_hosts, kvm.name: mapped})
    item = overview(fleet, fleet.guests["db.example.net"])
    assert dict(rows(item, "inventory/prod.py"))["NICs"] == (
        "from the Xen config (its vifs and MACs), on bridge br0 (vifs on xenbr0: br0, xenbr1: br1)"
    )
    assert item.as_json()["bridges"] == {"xenbr0": "br0", "xenbr1": "br1"}


def test_plan_json_marks_what_the_xen_config_says(capsys):
    assert cli.main(["plan", str(PROD), "--wave", "2", "--json"]) == 0
    items = {item["guest"]: item for item in json.loads(capsys.readouterr().out)}
    assert set(items) == {g.name for g in load_fleet(PROD).wave_guests(2)}
    assert items["dns.example.net"]["memory_mib"] is None
    assert "memory" in items["dns.example.net"]["live"]
    assert items["db.example.net"]["vcpus"] == 4
    assert "vCPUs" not in items["db.example.net"]["live"]
    assert items["shell.example.net"]["new_macs"] is True


def test_plan_of_a_rehome_names_the_new_dom0(capsys):
    assert cli.main(["plan", str(LAB), "--guest", "legacy2", "--json"]) == 0
    (item,) = json.loads(capsys.readouterr().out)
    assert (item["kind"], item["destination"], item["target"]) == ("rehome", "xen2", None)
    assert item["state_dir"] == "/var/lib/xen2kvm"


def test_plan_refuses_an_unknown_wave(capsys):
    assert cli.main(["plan", str(PROD), "--wave", "9"]) == 2
    assert "--wave 9: no such wave" in capsys.readouterr().err


def test_plan_names_the_pyinfra_inventory_beside_a_fleet_file(tmp_path):
    assert deploy_inventory(str(PROD)) == str(PROD.with_suffix(".py"))
    assert deploy_inventory("inventory/prod.py") == "inventory/prod.py"
    alone = tmp_path / "fleet.yml"
    assert deploy_inventory(str(alone)) == "INVENTORY.py"
