"""The fleet inventory: the example loads, groups are right, bad input is refused whole."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from xen2kvm.errors import InventoryError
from xen2kvm.inventory import load_fleet, parse_fleet
from xen2kvm.units import GIB, MIB

ROOT = Path(__file__).resolve().parents[2]
PROD = ROOT / "inventory" / "prod.yml"
LAB = ROOT / "inventory" / "lab.yml"


def _raw() -> dict:
    return yaml.safe_load(PROD.read_text())


def _problems(raw: dict) -> list[tuple[str, str, str]]:
    with pytest.raises(InventoryError) as info:
        parse_fleet(raw, "test.yml")
    return info.value.problems


def test_prod_example_describes_the_fleet_the_docs_promise():
    fleet = load_fleet(PROD)
    assert len(fleet.guests) == 6
    assert len(fleet.xen_hosts) == 2
    assert len(fleet.kvm_hosts) == 2
    assert fleet.waves == [1, 2]
    assert {g.arch for g in fleet.guests.values()} == {"amd64", "i386"}
    assert any(len(g.ips) > 1 for g in fleet.guests.values())


def test_lab_inventory_uses_the_same_schema():
    fleet = load_fleet(LAB)
    assert fleet.waves == [1, 2, 3]
    assert [g.arch for g in fleet.wave_guests(1)] == ["amd64", "i386"]


def test_a_guest_with_rehome_to_moves_to_that_dom0():
    fleet = load_fleet(LAB)
    legacy2 = fleet.guests["legacy2"]
    assert (legacy2.kvm_host, legacy2.rehome_to, legacy2.arch) == (None, "xen2", "i386")
    assert fleet.xen_hosts["xen2"].modules_packages
    assert fleet.xen_hosts["xen2"].vg is None
    wave3 = [name for name, _data in fleet.pyinfra_groups()["wave3"]]
    assert wave3 == ["xen1", "xen2", "legacy2"]


def _rehoming(raw: dict) -> dict:
    """The prod example with its first guest rehomed to the other dom0 (a 32-bit one)."""
    raw["xen_hosts"]["xen-b.example.net"]["modules_packages"] = "/srv/modules"
    guest = raw["guests"]["www.example.net"]
    del guest["kvm_host"]
    guest.update({"rehome_to": "xen-b.example.net", "arch": "i386"})
    return raw


def test_a_rehomed_guest_is_valid():
    raw = _rehoming(_raw())
    fleet = parse_fleet(raw, "test.yml")
    assert fleet.guests["www.example.net"].rehome_to == "xen-b.example.net"


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (lambda g, raw: g.update(kvm_host="kvm-a.example.net"), "rehome_to", "not both"),
        (lambda g, raw: g.update(rehome_to="xen-z.example.net"), "rehome_to", "not in the"),
        (lambda g, raw: g.update(rehome_to=g["xen_host"]), "rehome_to", "already its dom0"),
        (lambda g, raw: g.pop("rehome_to"), "kvm_host", "required (or rehome_to"),
        (
            lambda g, raw: raw["xen_hosts"]["xen-b.example.net"].pop("modules_packages"),
            "rehome_to",
            "set modules_packages on xen-b.example.net",
        ),
        (
            lambda g, raw: raw["xen_hosts"]["xen-b.example.net"].update(vg="bad/vg"),
            "vg",
            "not a valid LVM name",
        ),
    ],
    ids=["both", "unknown-dom0", "same-dom0", "neither", "no-modules", "bad-vg"],
)
def test_bad_rehome_names_host_and_field(change, field, words):
    raw = _rehoming(_raw())
    change(raw["guests"]["www.example.net"], raw)
    problems = _problems(raw)
    hosts = {"vg": "xen-b.example.net"}
    assert any(
        host == hosts.get(field, "www.example.net") and name == field and words in message
        for host, name, message in problems
    ), problems


def test_guest_defaults_and_overrides():
    fleet = load_fleet(PROD)
    www = fleet.guests["www.example.net"]
    assert www.xen_config == "/etc/xen/www.example.net.cfg"
    assert www.guest_vg == "www"
    assert www.target_lv == "www.example.net"
    assert www.boot_size == 512 * MIB
    assert www.grow == {"/var": 2 * GIB}
    assert www.ips == ("203.0.113.101", "203.0.113.102", "203.0.113.103")
    db = fleet.guests["db.example.net"]
    assert (db.memory_mib, db.vcpus) == (4096, 4)
    assert fleet.guests["files.example.net"].xen_config == "/etc/xen/files.cfg"
    assert fleet.guests["shell.example.net"].keep_macs is False


def test_a_kvm_host_runs_windows_during_boots_unless_it_says_not():
    raw = copy.deepcopy(_raw())
    raw["kvm_hosts"]["kvm-a.example.net"]["windows_during_boot"] = False
    fleet = parse_fleet(raw, "test.yml")
    assert fleet.kvm_hosts["kvm-a.example.net"].windows_during_boot is False
    assert fleet.kvm_hosts["kvm-b.example.net"].windows_during_boot is True


def test_wave_groups_hold_the_guests_and_the_hosts_they_need():
    groups = load_fleet(PROD).pyinfra_groups()
    names = {group: [name for name, _ in hosts] for group, hosts in groups.items()}
    assert names["wave1"] == [
        "xen-a.example.net",
        "kvm-a.example.net",
        "www.example.net",
        "lists.example.net",
    ]
    assert set(names["wave2"]) == {
        "xen-a.example.net",
        "xen-b.example.net",
        "kvm-a.example.net",
        "kvm-b.example.net",
        "db.example.net",
        "files.example.net",
        "dns.example.net",
        "shell.example.net",
    }
    assert names["xen_hosts"] == ["xen-a.example.net", "xen-b.example.net"]
    assert len(names["guests"]) == 6


def test_host_data_tells_pyinfra_how_to_connect():
    groups = load_fleet(PROD).pyinfra_groups()
    data = dict(groups["guests"])["lists.example.net"]
    assert data["ssh_hostname"] == "203.0.113.104"
    assert data["ssh_user"] == "root"
    assert data["x2k_role"] == "guest"
    assert data["x2k_wave"] == 1


def test_pyinfra_reads_the_inventory_file():
    result = subprocess.run(
        [sys.executable, "-m", "pyinfra", "inventory/prod.py", "debug-inventory"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--> Groups: guests, wave1, move_www_example_net, prod" in result.stdout + result.stderr


def test_pyinfra_refuses_a_bad_inventory_before_connecting(tmp_path):
    raw = _raw()
    raw["guests"]["www.example.net"]["kvm_host"] = "kvm-z.example.net"
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(raw))
    inv = tmp_path / "bad.py"
    inv.write_text(
        "from pathlib import Path\n"
        "from xen2kvm.pyinfra_inventory import fleet_groups\n"
        "globals().update(fleet_groups(Path(__file__).with_name('bad.yml')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "pyinfra", str(inv), "debug-inventory"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "www.example.net: kvm_host: 'kvm-z.example.net' is not in the inventory" in output


@pytest.mark.parametrize(
    ("mutate", "host", "field", "words"),
    [
        (
            lambda r: r["guests"]["www.example.net"].update(colour="blue"),
            "www.example.net",
            "colour",
            "unknown key",
        ),
        (
            lambda r: r["guests"]["www.example.net"].update(adress="x"),
            "www.example.net",
            "adress",
            "did you mean 'address'",
        ),
        (
            lambda r: r["guests"]["www.example.net"].pop("wave"),
            "www.example.net",
            "wave",
            "required",
        ),
        (
            lambda r: r["guests"]["www.example.net"].update(wave=0),
            "www.example.net",
            "wave",
            "whole number",
        ),
        (
            lambda r: r["guests"].update({"Bad_Name": r["guests"].pop("db.example.net")}),
            "Bad_Name",
            "name",
            "^[a-z0-9]",
        ),
        (
            lambda r: r["guests"]["www.example.net"].update(xen_host="nowhere"),
            "www.example.net",
            "xen_host",
            "not in the inventory",
        ),
        (
            lambda r: r["guests"]["www.example.net"].update(boot_size="big"),
            "www.example.net",
            "boot_size",
            "not a size",
        ),
        (
            lambda r: r["guests"]["www.example.net"].update(grow={"/var": "2X"}),
            "www.example.net",
            "grow./var",
            "unknown unit",
        ),
        (
            lambda r: r["guests"]["www.example.net"].update(memory="-1G"),
            "www.example.net",
            "memory",
            "not a size",
        ),
        (
            lambda r: r["guests"]["db.example.net"].update(address="203.0.113.101"),
            "db.example.net",
            "address",
            "already used by www.example.net",
        ),
        (
            lambda r: r["guests"]["db.example.net"].update(ips=["203.0.113.106", "203.0.113.11"]),
            "db.example.net",
            "ips",
            "already used by xen-a.example.net",
        ),
        (
            lambda r: r["guests"]["db.example.net"].update(address="203.0.113.300"),
            "db.example.net",
            "address",
            "not an IP address",
        ),
        (
            lambda r: r["guests"]["db.example.net"].update(macs=["00:16:3e:zz:00:01"]),
            "db.example.net",
            "macs",
            "not a MAC",
        ),
        (
            lambda r: (
                r["guests"]["db.example.net"].update(macs=["00:16:3e:00:00:01"]),
                r["guests"]["www.example.net"].update(macs=["00:16:3E:00:00:01"]),
            ),
            "db.example.net",
            "macs",
            "already used by www.example.net",
        ),
        (
            lambda r: r["guests"]["www.example.net"].update(layout="lvm"),
            "www.example.net",
            "layout",
            "not one of matryoshka, plain",
        ),
        (
            lambda r: r["guests"]["www.example.net"].update(arch="sparc"),
            "www.example.net",
            "arch",
            "not one of",
        ),
        (
            lambda r: r["guests"]["www.example.net"].update(guest_vg="vg_guests"),
            "www.example.net",
            "guest_vg",
            "KVM host's own VG",
        ),
        (
            lambda r: r["guests"]["www.example.net"].update(guest_vg="-x"),
            "www.example.net",
            "guest_vg",
            "not a valid LVM name",
        ),
        (
            lambda r: r["kvm_hosts"]["kvm-a.example.net"].pop("vg"),
            "kvm-a.example.net",
            "vg",
            "required",
        ),
        (
            lambda r: r["kvm_hosts"]["kvm-a.example.net"].update(bridge="br0; reboot"),
            "kvm-a.example.net",
            "bridge",
            "not an interface name",
        ),
        (
            lambda r: r["kvm_hosts"]["kvm-a.example.net"].update(windows_during_boot="no"),
            "kvm-a.example.net",
            "windows_during_boot",
            "true or false",
        ),
        (
            lambda r: r["xen_hosts"]["xen-a.example.net"].update(ssh_port="22"),
            "xen-a.example.net",
            "ssh_port",
            "not a TCP port",
        ),
        (
            lambda r: r["defaults"].update(keep_macs="yes"),
            "www.example.net",
            "keep_macs",
            "true or false",
        ),
        (lambda r: r["defaults"].update(wave=1), "defaults", "wave", "unknown key"),
        (
            lambda r: r["kvm_hosts"].update(
                {"www.example.net": {"address": "203.0.113.99", "vg": "vg"}}
            ),
            "www.example.net",
            "name",
            "used more than once",
        ),
        (
            lambda r: r["guests"]["www.example.net"].update(ips=["203.0.113.102"]),
            "www.example.net",
            "ips",
            "must include the guest's address",
        ),
    ],
)
def test_bad_inventory_names_host_and_field(mutate, host, field, words):
    raw = copy.deepcopy(_raw())
    mutate(raw)
    problems = _problems(raw)
    matching = [p for p in problems if p[0] == host and p[1] == field]
    assert matching, f"expected a problem for {host}/{field}, got {problems}"
    assert any(words in message for _, _, message in matching), matching


def _second_www(raw: dict, **settings) -> dict:
    """The prod example with another guest whose name's first label is www too."""
    raw["guests"]["www.example.org"] = {
        "wave": 2,
        "xen_host": "xen-b.example.net",
        "kvm_host": "kvm-a.example.net",
        "address": "203.0.113.120",
        **settings,
    }
    return raw


def test_two_guests_of_one_guest_vg_on_one_kvm_host_are_refused():
    problems = _problems(_second_www(copy.deepcopy(_raw())))
    assert problems == [
        (
            "www.example.org",
            "guest_vg",
            "www (from its name) is already used by www.example.net (guest_vg): a guest VG "
            "name (guest_vg) must be unique among the matryoshka guests of one KVM host: LVM "
            "refuses two VGs of one name (set another guest_vg: for one of them)",
        )
    ]


@pytest.mark.parametrize(
    "settings",
    [{"guest_vg": "www_org"}, {"kvm_host": "kvm-b.example.net"}, {"layout": "plain"}],
    ids=["the-fix-guest_vg", "another-kvm-host", "plain-has-no-guest-vg"],
)
def test_one_guest_vg_name_twice_is_fine_where_lvm_never_sees_both(settings):
    fleet = parse_fleet(_second_www(copy.deepcopy(_raw()), **settings), "test.yml")
    assert fleet.guests["www.example.net"].guest_vg == "www"


def test_every_problem_is_reported_at_once():
    raw = copy.deepcopy(_raw())
    raw["guests"]["www.example.net"]["wave"] = "first"
    raw["guests"]["db.example.net"]["boot_size"] = "lots"
    raw["kvm_hosts"]["kvm-b.example.net"]["address"] = "nowhere"
    problems = _problems(raw)
    assert {(h, f) for h, f, _ in problems} >= {
        ("www.example.net", "wave"),
        ("db.example.net", "boot_size"),
        ("kvm-b.example.net", "address"),
    }
    message = str(InventoryError("test.yml", problems))
    assert message.startswith("test.yml: ")
    assert "nothing was run" in message


def test_a_key_written_twice_in_the_yaml_is_refused(tmp_path):
    path = tmp_path / "dup.yml"
    text = PROD.read_text().replace(
        "  lists.example.net:\n", "  www.example.net:\n    wave: 1\n  lists.example.net:\n", 1
    )
    path.write_text(text)
    with pytest.raises(InventoryError, match=r"duplicate key 'www\.example\.net'"):
        load_fleet(path)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(InventoryError, match="cannot read"):
        load_fleet(tmp_path / "nope.yml")


def test_every_host_checks_host_keys_strictly():
    """pyinfra's own default is accept-new: a host never seen is added, not refused. The
    fleet's hosts refuse one missing from the known_hosts file (ssh_known_hosts_file)."""
    fleet = load_fleet(ROOT / "inventory" / "prod.yml")
    for group in ("xen_hosts", "kvm_hosts", "guests"):
        for name, data in fleet.pyinfra_groups()[group]:
            assert data["ssh_strict_host_key_checking"] == "yes", name
