"""managed_view: what libvirt.domain compares between the wanted XML and the defined one."""

from __future__ import annotations

from pathlib import Path

import pytest

from operations.libvirt import managed_view
from xen2kvm import render

DATA = Path(__file__).resolve().parents[1] / "data" / "libvirt"
XEN_HOST, XEN_CONFIG = "xen-a.example.net", "/etc/xen/www.cfg"


@pytest.fixture()
def wanted(www_plan) -> str:
    return render.domain_xml(www_plan.domain, XEN_HOST, XEN_CONFIG)


@pytest.fixture()
def defined() -> str:
    """``virsh dumpxml --inactive`` after ``virsh define`` of ``wanted``, on libvirt 9.0's
    test driver (test:///default): memory in KiB, a tap name, graphics and video filled in."""
    return (DATA / "www.example.net.inactive.xml").read_text()


def qemu_rewrite(text: str) -> str:
    """What libvirt's QEMU driver also adds, as the lab's KVM host showed for x2ktest
    (``virsh dumpxml --inactive``, libvirt 9.0, captured 2026-11-25)."""
    return (
        text.replace("machine='pc'", "machine='pc-i440fx-7.2'")
        .replace("<devices>", "<devices>\n    <emulator>/usr/bin/qemu-system-x86_64</emulator>")
        .replace(
            "<target dev='vda' bus='virtio'/>",
            "<target dev='vda' bus='virtio'/>\n      <address type='pci' domain='0x0000' "
            "bus='0x00' slot='0x03' function='0x0'/>",
        )
        .replace(
            "</devices>",
            "  <controller type='pci' index='0' model='pci-root'/>\n  </devices>\n"
            "  <seclabel type='dynamic' model='apparmor' relabel='yes'/>",
        )
        .replace("00:16:3e:5a:01:01", "00:16:3E:5A:01:01")
    )


def test_libvirts_rewrite_is_no_difference(wanted, defined):
    assert managed_view(defined) == managed_view(wanted)


def test_qemus_additions_are_no_difference(wanted, defined):
    assert managed_view(qemu_rewrite(defined)) == managed_view(wanted)


def test_view_holds_the_plan(wanted, www_plan):
    view = managed_view(wanted)
    assert view["memory"] == www_plan.domain.memory_mib * 2**20
    assert view["current_memory"] == www_plan.domain.current_memory_mib * 2**20
    assert view["disks"] == [
        {"device": "disk", "source": {"dev": www_plan.domain.disk_path},
         "target": {"dev": "vda", "bus": "virtio"}}
    ]  # fmt: skip
    assert view["interfaces"][0]["mac"] == "00:16:3e:5a:01:01"
    assert view["xen2kvm"]["xen-host"] == XEN_HOST


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("<memory unit='KiB'>2097152</memory>", "<memory unit='KiB'>4194304</memory>"),
        ("<vcpu placement='static'>2</vcpu>", "<vcpu placement='static'>4</vcpu>"),
        ("<on_crash>restart</on_crash>", "<on_crash>destroy</on_crash>"),
        ("<source bridge='br0'/>", "<source bridge='br1'/>"),
        ("00:16:3e:5a:01:01", "00:16:3e:5a:01:02"),
        ("<model type='virtio'/>\n    </interface>", "<model type='e1000'/>\n    </interface>"),
        ("<source dev='/dev/vg_guests/www.example.net'/>", "<source dev='/dev/vg0/www'/>"),
        ("<x2k:xen-host>xen-a.example.net", "<x2k:xen-host>xen-b.example.net"),
        ("machine='pc'", "machine='q35'"),
        ("<domain type='kvm'>", "<domain type='qemu'>"),
    ],
)
def test_a_managed_change_is_a_difference(wanted, defined, old, new):
    assert old in defined
    assert managed_view(defined.replace(old, new)) != managed_view(wanted)


def test_memory_units_are_normalised():
    a = "<domain><name>a</name><memory unit='GiB'>1</memory></domain>"
    b = "<domain><name>a</name><memory>1048576</memory></domain>"  # KiB by default
    assert managed_view(a)["memory"] == managed_view(b)["memory"] == 2**30


@pytest.mark.parametrize("text", ["<domain>", "<network><name>a</name></network>"])
def test_not_a_domain_is_refused(text):
    with pytest.raises(ValueError):
        managed_view(text)
