"""Templates: every domain XML passes virt-xml-validate, every fstab findmnt --verify."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from xen2kvm import render
from xen2kvm.fstab import parse_fstab
from xen2kvm.planner import Nic, plan_domain, plan_guest, source_volumes

from .conftest import WWW_SIZES

# findmnt --verify checks what it can on *this* machine: the migrated guest's devices and
# mount points do not exist here, so those findings (and only those) are expected.
ABSENT_HERE = (
    "unreachable source",
    "unreachable on boot required source",
    "cannot detect on-disk filesystem type",
    "target does not exist",
    "unreachable on boot required target",
)


def virt_xml_validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["virt-xml-validate", str(path), "domain"], capture_output=True, text=True, check=False
    )


def findmnt_verify(path: Path) -> tuple[str, list[str]]:
    result = subprocess.run(
        ["findmnt", "--verify", "--verbose", "--tab-file", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    output = result.stdout + result.stderr
    findings = [
        line.strip()
        for line in output.splitlines()
        if re.match(r"\s*\[[EW]\]", line) and not any(ok in line for ok in ABSENT_HERE)
    ]
    return output, findings


def test_domain_xml_is_valid_libvirt(www_plan, tmp_path):
    path = tmp_path / "www.xml"
    path.write_text(render.domain_xml(www_plan.domain, "xen-a.example.net", "/etc/xen/www.cfg"))
    result = virt_xml_validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "validates" in result.stdout + result.stderr


def test_domain_xml_carries_the_plan(www_plan):
    text = render.domain_xml(www_plan.domain, "xen-a.example.net", "/etc/xen/www.cfg")
    root = ET.fromstring(text)
    assert root.get("type") == "kvm"
    assert root.findtext("name") == "www.example.net"
    assert root.findtext("memory") == "2048"
    assert root.findtext("currentMemory") == "1024"
    assert root.findtext("vcpu") == "2"
    disk = root.find("devices/disk")
    assert disk is not None
    assert disk.find("source").get("dev") == "/dev/vg_guests/www.example.net"
    assert disk.find("target").get("bus") == "virtio"
    nic = root.find("devices/interface")
    assert nic.find("mac").get("address") == "00:16:3e:5a:01:01"
    assert nic.find("model").get("type") == "virtio"
    assert root.find("devices/serial").get("type") == "pty"
    assert root.find("devices/console/target").get("type") == "serial"
    assert root.find("devices/graphics").get("type") == "vnc"
    assert root.findtext("on_crash") == "restart"


def test_lab_domains_are_software_emulated(www_plan, tmp_path):
    dom = dataclasses.replace(www_plan.domain, virt_type="qemu")
    path = tmp_path / "lab.xml"
    path.write_text(render.domain_xml(dom, "xen1", "/etc/xen/web1.cfg"))
    assert virt_xml_validate(path).returncode == 0
    assert ET.parse(path).getroot().find("cpu") is None


def test_hostile_values_are_escaped_and_still_valid(www_plan, tmp_path):
    text = render.domain_xml(www_plan.domain, "xen<a>&'\"", "/etc/xen/x'/><evil/>.cfg")
    root = ET.fromstring(text)
    assert root.find(".//evil") is None
    assert root.find(".//{urn:xen2kvm:migration:1}xen-host").text == "xen<a>&'\""
    assert root.find(".//{urn:xen2kvm:migration:1}xen-config").text.endswith("<evil/>.cfg")
    path = tmp_path / "hostile.xml"
    path.write_text(text)
    assert virt_xml_validate(path).returncode == 0


def test_each_nic_is_on_its_own_bridge_in_a_valid_domain(fleet, www_domain, tmp_path):
    # Two vifs on xenbr0 and xenbr1, mapped by the KVM host's bridges: two interfaces.
    config = www_domain.vifs[0]
    domain = dataclasses.replace(
        www_domain,
        vifs=(config, dataclasses.replace(config, mac="00:16:3e:5a:01:02", bridge="xenbr1")),
    )
    guest = fleet.guests["www.example.net"]
    kvm = dataclasses.replace(
        fleet.kvm_hosts[guest.kvm_host], bridges={"xenbr0": "br0", "xenbr1": "br1"}
    )
    plan = plan_domain(guest, kvm, domain)
    path = tmp_path / "two-bridges.xml"
    path.write_text(render.domain_xml(plan, "xen-a.example.net", "/etc/xen/www.cfg"))
    root = ET.parse(path).getroot()
    macs = [mac.get("address") for mac in root.findall("devices/interface/mac")]
    bridges = [source.get("bridge") for source in root.findall("devices/interface/source")]
    assert list(zip(macs, bridges, strict=True)) == [
        ("00:16:3e:5a:01:01", "br0"),
        ("00:16:3e:5a:01:02", "br1"),
    ]
    result = virt_xml_validate(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_an_injected_attribute_cannot_break_out(www_plan, tmp_path):
    # The inventory refuses such a bridge name; the template must still not be injectable.
    dom = dataclasses.replace(
        www_plan.domain, nics=(Nic(mac="00:16:3e:00:00:01", bridge="br0'/><evil/>"),)
    )
    root = ET.fromstring(render.domain_xml(dom, "xen-a", "/etc/xen/www.cfg"))
    assert root.find(".//evil") is None
    assert root.find("devices/interface/source").get("bridge") == "br0'/><evil/>"
    path = tmp_path / "hostile.xml"
    path.write_text(render.domain_xml(dom, "xen-a", "/etc/xen/www.cfg"))
    assert virt_xml_validate(path).returncode != 0  # and libvirt's schema refuses the name


def test_rendering_is_byte_identical_on_a_rerun(www_plan):
    first = render.domain_xml(www_plan.domain, "xen-a.example.net", "/etc/xen/www.cfg")
    assert render.domain_xml(www_plan.domain, "xen-a.example.net", "/etc/xen/www.cfg") == first


def test_undefined_template_values_are_refused():
    import jinja2

    with pytest.raises(jinja2.UndefinedError):
        render._render("domain.xml.j2", dom=None, xen_host="x", xen_config="y")


def test_fstab_renames_xen_devices_and_adds_boot(www_plan, www_fstab, tmp_path):
    text = render.fstab(www_plan, www_fstab)
    entries = {e.mountpoint: e for e in parse_fstab(text)}
    assert entries["/"].device == "/dev/mapper/www-root"
    assert entries["/"].options == "errors=remount-ro"
    assert entries["/home"].device == "/dev/mapper/www-home"
    assert entries["none"].device == "/dev/mapper/www-swap"
    assert entries["/boot"].device == f"UUID={www_plan.boot_uuid}"
    assert entries["/proc"].device == "proc"
    assert entries["/tmp"].fstype == "tmpfs"
    assert "xvd" not in text and "/dev/sd" not in text
    path = tmp_path / "fstab"
    path.write_text(text)
    output, findings = findmnt_verify(path)
    assert "0 parse errors" in output
    assert findings == []


def test_fstab_fields_with_spaces_are_escaped(www_plan, tmp_path):
    source = parse_fstab(
        "/dev/xvda2 / ext3 defaults 0 1\n//srv/share /mnt/my\\040files cifs guest 0 0\n"
    )
    text = render.fstab(www_plan, source)
    assert "/mnt/my\\040files" in text
    assert [e.mountpoint for e in parse_fstab(text)][-1] == "/mnt/my files"
    path = tmp_path / "fstab"
    path.write_text(text)
    output, findings = findmnt_verify(path)
    assert "0 parse errors" in output
    assert findings == []


def test_plain_layout_fstab_verifies(fleet, www_domain, www_fstab, tmp_path):
    guest = dataclasses.replace(fleet.guests["www.example.net"], layout="plain")
    volumes = source_volumes(guest.name, www_domain, www_fstab, WWW_SIZES)
    plan = plan_guest(guest, fleet.kvm_hosts["kvm-a.example.net"], www_domain, volumes)
    path = tmp_path / "fstab"
    path.write_text(render.fstab(plan, www_fstab))
    assert "/dev/vda5 / ext3" in path.read_text()
    output, findings = findmnt_verify(path)
    assert "0 parse errors" in output
    assert findings == []


def test_the_fstab_check_does_catch_a_broken_file(tmp_path):
    path = tmp_path / "fstab"
    path.write_text("/dev/vda1 / ext4 defaults 0 1\n/dev/vda2 / ext4 defaults 0 1\nbroken\n")
    output, findings = findmnt_verify(path)
    assert "1 parse error" in output
    assert any("more than once" in line for line in findings)


def test_grub_drop_in_sets_the_serial_console_and_keeps_eth_names(www_plan):
    text = render.grub_defaults(www_plan)
    assert 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX net.ifnames=0 ' in text
    assert "console=ttyS0,115200n8" in text
    assert 'GRUB_TERMINAL="console serial"' in text
    quiet_dom = dataclasses.replace(www_plan.domain, serial_console=False)
    quiet = render.grub_defaults(dataclasses.replace(www_plan, domain=quiet_dom))
    assert "ttyS0" not in quiet
    assert "net.ifnames=0" in quiet


def test_persistent_net_rules_name_the_planned_macs(www_plan):
    text = render.persistent_net_rules(www_plan)
    rules = [line for line in text.splitlines() if line.startswith("SUBSYSTEM")]
    assert rules == [
        'SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="00:16:3e:5a:01:01", '
        'ATTR{type}=="1", NAME="eth0"'
    ]
