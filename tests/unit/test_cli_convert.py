"""``xen2kvm convert``: every test config becomes a domain that libvirt's schema accepts."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data" / "xen"
# Configs that parse (their expected JSON is an object, not an error).
CONFIGS = sorted(
    p for p in DATA.glob("*.cfg") if "error" not in json.loads(p.with_suffix(".json").read_text())
)


def convert(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xen2kvm.cli", "convert", *args],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_parsable_config_converts_to_a_valid_domain(config, tmp_path):
    out = tmp_path / "domain.xml"
    result = convert(str(config), "--name", "guest1", "-o", str(out))
    assert result.returncode == 0, result.stderr
    check = subprocess.run(
        ["virt-xml-validate", str(out), "domain"], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    expected = json.loads(config.with_suffix(".json").read_text())
    root = ET.parse(out).getroot()
    macs = [m.get("address") for m in root.findall("devices/interface/mac")]
    assert len(macs) == max(len(expected["vifs"]), 1)
    for mac, vif in zip(macs, expected["vifs"], strict=False):
        assert mac == (vif["mac"].lower() if vif["mac"] else mac)
        assert vif["mac"] or mac.startswith("52:54:00:")
    if expected["memory_mib"]:
        assert root.findtext("currentMemory") == str(expected["memory_mib"])


def test_options_reach_the_xml():
    result = convert(
        str(DATA.parent / "guests" / "www.example.net.cfg"),
        "--vg", "vg_kvm", "--lv", "www", "--bridge", "br1", "--virt-type", "qemu",
        "--memory", "3G", "--vcpus", "3", "--new-macs",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    root = ET.fromstring(result.stdout)
    assert root.get("type") == "qemu"
    assert root.find("devices/disk/source").get("dev") == "/dev/vg_kvm/www"
    assert root.find("devices/interface/source").get("bridge") == "br1"
    assert root.find("devices/interface/mac").get("address").startswith("52:54:00:")
    assert (root.findtext("memory"), root.findtext("vcpu")) == ("3072", "3")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--bridge", "br0;x"], "--bridge: not an interface name"),
        (["--vg=-bad"], "--vg: not a valid LVM name"),
        (["--memory", "lots"], "--memory: not a size"),
        (["--name", "Bad Name"], "name: must match"),
    ],
)
def test_bad_options_fail_cleanly(args, words):
    result = convert(str(DATA.parent / "guests" / "www.example.net.cfg"), *args)
    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_config_fails_with_file_and_line(tmp_path):
    bad = tmp_path / "bad.cfg"
    bad.write_text("name = 'x'\nmemory = 'lots'\n")
    result = convert(str(bad))
    assert result.returncode == 2
    assert f"{bad}:2" in result.stderr
    assert "memory" in result.stderr
