"""verify/conftest.py reads the deploy's own inventory: the same hosts, users and keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from verify.conftest import load_inventory, ssh_config_text

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", ["inventory/prod.py", "inventory/prod.yml"])
def test_the_py_and_the_yml_give_the_same_hosts(path):
    found = load_inventory(str(ROOT / path))
    assert set(found.fleet.guests) <= set(found.host_data)
    assert set(found.fleet.kvm_hosts) <= set(found.host_data)
    for name, guest in found.fleet.guests.items():
        assert found.host_data[name]["ssh_hostname"] == guest.address


def test_the_lab_inventory_carries_its_key_and_known_hosts():
    found = load_inventory(str(ROOT / "inventory/lab.py"))
    assert found.host_data["web1"]["ssh_key"].endswith("/keys/id_ed25519")
    assert found.host_data["web1"]["ssh_known_hosts_file"].endswith("/known_hosts")


def test_ssh_config_checks_host_keys_with_the_inventory_settings(tmp_path):
    text = ssh_config_text(
        {
            "web1": {
                "ssh_hostname": "198.51.100.101",
                "ssh_user": "admin",
                "ssh_port": 2222,
                "ssh_key": "~/.ssh/x2k",
                "ssh_known_hosts_file": "/etc/x2k/known_hosts",
            }
        },
        str(tmp_path),
    )
    block = [line.strip() for line in text.splitlines()]
    assert block[0] == "Host web1"
    assert "HostName 198.51.100.101" in block
    assert "User admin" in block
    assert "Port 2222" in block
    assert f"IdentityFile {Path('~/.ssh/x2k').expanduser()}" in block
    assert "UserKnownHostsFile /etc/x2k/known_hosts" in block
    assert "StrictHostKeyChecking yes" in block
    assert f"ControlPath {tmp_path}/%C" in block


def test_a_missing_inventory_is_a_usage_error(tmp_path):
    with pytest.raises(pytest.UsageError, match=r"nope\.yml: no such file"):
        load_inventory(str(tmp_path / "nope.yml"))
