"""``xen2kvm convert CONFIG --inventory INV --guest NAME``: the XML the deploy defines.

Checked against the deploy's path (``tasks/destinations/kvm.py``): ``plan_guest`` on the
Xen config, fstab and sizes, then ``render.domain_xml(plan.domain, xen_host, xen_config)``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from xen2kvm import cli, render
from xen2kvm.fstab import parse_fstab
from xen2kvm.inventory import load_fleet
from xen2kvm.lab import dom0 as lab_dom0
from xen2kvm.lab import fleet as lab_fleet
from xen2kvm.planner import GuestPlan, plan_guest, source_volumes
from xen2kvm.units import MIB
from xen2kvm.xenconfig import parse_xen_config

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventory" / "lab.yml"
LAB_KVM_GUESTS = [g for g, spec in load_fleet(LAB).guests.items() if spec.kvm_host]


def _lab_config(name: str) -> tuple[str, str]:
    """The lab dom0's Xen config for ``name`` and the guest's fstab (as the lab builds them)."""
    spec = lab_fleet.load().guest(name)
    fstab = "".join(
        f"/dev/{d.vdev} {d.mountpoint or 'none'} {'ext4' if d.mountpoint else 'swap'} "
        f"{'defaults' if d.mountpoint else 'sw'} 0 {1 if d.mountpoint == '/' else 0}\n"
        for d in spec.disks
    )
    return lab_dom0.xen_config(spec), fstab


def _deploy_plan(name: str) -> tuple[str, GuestPlan]:
    """What the deploy plans and defines for a lab guest (tasks/move.py, destinations/kvm.py)."""
    fleet = load_fleet(LAB)
    guest = fleet.guests[name]
    text, fstab = _lab_config(name)
    domain = parse_xen_config(text, f"{guest.xen_host}:{guest.xen_config}")
    sizes = {d.target: 1024 * MIB for d in domain.disks if d.target}
    volumes = source_volumes(guest.name, domain, parse_fstab(fstab), sizes)
    plan = plan_guest(guest, fleet.kvm_hosts[str(guest.kvm_host)], domain, volumes)
    return text, plan


@pytest.mark.parametrize("name", LAB_KVM_GUESTS)
def test_convert_with_the_inventory_gives_the_deploys_xml(name, tmp_path, capsys):
    text, plan = _deploy_plan(name)
    guest = load_fleet(LAB).guests[name]
    config = tmp_path / f"{name}.cfg"
    config.write_text(text)
    assert cli.main(["convert", str(config), "--inventory", str(LAB), "--guest", name]) == 0
    expected = render.domain_xml(plan.domain, guest.xen_host, guest.xen_config)
    assert capsys.readouterr().out == expected


@pytest.mark.parametrize(
    ("option", "value"),
    [("--vg", "vg1"), ("--bridge", "br1"), ("--memory", "1G"), ("--new-macs", None)],
)
def test_convert_refuses_an_option_the_inventory_says(option, value, tmp_path, capsys):
    config = tmp_path / "web1.cfg"
    config.write_text(_lab_config("web1")[0])
    extra = [option] + ([value] if value else [])
    argv = ["convert", str(config), "--inventory", str(LAB), "--guest", "web1", *extra]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert f"xen2kvm: error: {option}: --inventory {LAB} says that of web1" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--guest", "web1"], "--guest needs --inventory"),
        (["--inventory", str(LAB)], "--inventory needs --guest"),
        (["--inventory", str(LAB), "--guest", "nope"], "--guest nope: not in"),
        (["--inventory", str(LAB), "--guest", "legacy2"], "rehomes it to the dom0 xen2"),
    ],
    ids=["no-inventory", "no-guest", "unknown-guest", "rehomed"],
)
def test_convert_with_an_inventory_refuses_what_it_cannot_do(argv, message, tmp_path, capsys):
    config = tmp_path / "web1.cfg"
    config.write_text(_lab_config("web1")[0])
    assert cli.main(["convert", str(config), *argv]) == 2
    assert message in capsys.readouterr().err
