"""The guest's Xen config for its new dom0 (xen2kvm.rehome, pure)."""

from __future__ import annotations

import pytest

from xen2kvm.rehome import RehomeError, rehome_config, target_device
from xen2kvm.xenconfig import parse_xen_config

XEN_TOOLS = """\
kernel      = '/boot/vmlinuz-2.6.26-2-686-bigmem'
ramdisk     = '/boot/initrd.img-2.6.26-2-686-bigmem'
memory      = '256'
root        = '/dev/xvda2 ro'
disk        = [
                  'phy:/dev/vg0/www-disk,xvda2,w',
                  'phy:/dev/vg0/www-swap,xvda1,w',
                  'phy:/dev/vg0/www-disk2,xvda3,w',
              ]
name        = 'www'
vif         = [ 'mac=00:16:3e:00:00:01,bridge=xenbr0' ]
"""
DEVICES = {
    "/dev/vg0/www-disk": "/dev/xenvg/www-disk",
    "/dev/vg0/www-swap": "/dev/xenvg/www-swap",
    "/dev/vg0/www-disk2": "/dev/xenvg/www-disk2",
}


def test_the_config_boots_the_dom0_kernel_from_the_new_lvs():
    text = rehome_config(XEN_TOOLS, "6.1.0-35-amd64", DEVICES, "xen1:/etc/xen/www.cfg")
    domain = parse_xen_config(text, "new")
    assert domain.kernel == "/boot/vmlinuz-6.1.0-35-amd64"
    assert domain.ramdisk == "/boot/initrd.img-6.1.0-35-amd64"
    assert [d.target for d in domain.disks] == list(DEVICES.values())
    assert "memory      = '256'" in text and "name        = 'www'" in text


def test_a_config_without_kernel_lines_gets_them():
    text = "name = 'www'\ndisk = ['phy:/dev/vg0/www-disk,xvda2,w']\n"
    domain = parse_xen_config(rehome_config(text, "6.1.0-37-amd64", DEVICES, "x"), "new")
    assert (domain.kernel, domain.ramdisk) == (
        "/boot/vmlinuz-6.1.0-37-amd64",
        "/boot/initrd.img-6.1.0-37-amd64",
    )


def test_a_device_that_only_starts_like_another_is_left_alone():
    text = rehome_config(XEN_TOOLS, "6.1.0-35-amd64", {"/dev/vg0/www-disk": "/dev/n/x"}, "x")
    assert "phy:/dev/n/x,xvda2" in text and "phy:/dev/vg0/www-disk2,xvda3" in text


def test_a_bootloader_config_is_refused():
    text = "bootloader = 'pygrub'\nname = 'www'\n"
    with pytest.raises(RehomeError, match=r"xen1:/etc/xen/www\.cfg: boots its own kernel \(pygrub"):
        rehome_config(text, "6.1.0-35-amd64", {}, "xen1:/etc/xen/www.cfg")


def test_new_lvs_go_in_the_new_dom0_vg_or_stay_where_they_are():
    assert target_device("/dev/vg0/www-disk", "xenvg") == "/dev/xenvg/www-disk"
    assert target_device("/dev/vg0/www-disk", None) == "/dev/vg0/www-disk"
