"""The boot menu xen2kvm writes for a migrated guest (``xen2kvm.bootmenu``,
``render.grub_cfg``): which kernels, in which order, and only plain values in it."""

from __future__ import annotations

import random
import shutil
import subprocess
from itertools import pairwise

import pytest

from xen2kvm import render
from xen2kvm.bootmenu import boot_kernels, check_menu, debian_version_key

UUID = "5ab1e000-0000-4000-8000-00000000b001"
ROOT = "/dev/mapper/web1-root"
CMDLINE = "net.ifnames=0 console=tty0 console=ttyS0,115200n8"


def test_kernels_newest_first_in_dpkg_order():
    found = boot_kernels(
        ["/b/vmlinuz-6.1.0-9-amd64", "/b/vmlinuz-6.1.0-10-amd64", "/b/vmlinuz-5.10.0-28-amd64"],
        ["/b/initrd.img-6.1.0-10-amd64", "/b/initrd.img-5.10.0-28-amd64"],
    )
    assert found == [
        ("6.1.0-10-amd64", True),
        ("6.1.0-9-amd64", False),
        ("5.10.0-28-amd64", True),
    ]


@pytest.mark.parametrize(
    "name",
    [
        "vmlinuz-6.1.0-50-amd64;reboot",
        "vmlinuz-$(reboot)",
        "vmlinuz-6.1.0-50-amd64'\nmenuentry x {",
        "vmlinuz-",
        "vmlinuz--rf",
        "vmlinuz-6.1.0-50-amd64.dpkg-new",
        "vmlinuz-6.1.0-50-amd64.rpmsave",
    ],
)
def test_kernel_names_that_are_not_plain_releases_are_left_out(name):
    assert boot_kernels([f"/b/{name}", "/b/vmlinuz-6.1.0-50-amd64"], []) == [
        ("6.1.0-50-amd64", False)
    ]


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg")
def test_version_order_is_dpkg_s():
    rng = random.Random(12)  # noqa: S311 (test data, not secrets)
    alphabet = "0123456789.~+-ab"
    versions = []
    while len(versions) < 300:
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
        if text[0].isdigit() and not text.endswith("-"):
            versions.append(text)
    for first, second in pairwise(versions):
        dpkg = subprocess.run(["dpkg", "--compare-versions", first, "lt", second]).returncode == 0
        assert dpkg == (debian_version_key(first) < debian_version_key(second)), (first, second)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"boot_uuid": "5AB1E000-0000-4000-8000-00000000B001"}, "not a filesystem UUID"),
        ({"boot_uuid": "x; reboot"}, "not a filesystem UUID"),
        ({"root_device": "/dev/vda2 init=/bin/sh"}, "not a plain device path"),
        ({"root_device": "UUID=abc"}, "not a plain device path"),
        ({"cmdline": "quiet\nmenuentry x {"}, "not plain kernel options"),
        ({"cmdline": "a  b"}, "not plain kernel options"),
        ({"cmdline": "init=$(reboot)"}, "not plain kernel options"),
        ({"kernels": [("6.1;reboot", True)]}, "not a plain kernel release"),
    ],
)
def test_values_that_are_not_plain_are_refused(kwargs, words):
    values = {"kernels": [], "boot_uuid": UUID, "root_device": ROOT, "cmdline": CMDLINE}
    values.update(kwargs)
    with pytest.raises(ValueError, match=words):
        check_menu(**values)


def test_menu_lists_each_kernel_with_the_plan_s_root_and_console():
    text = render.grub_cfg([("6.1.0-51-amd64", True), ("6.1.0-50-amd64", False)], UUID, ROOT,
                           CMDLINE, serial_console=True)  # fmt: skip
    entries = text.split("menuentry ")[1:]
    assert [entry.split("'")[1] for entry in entries] == [
        "Debian GNU/Linux, with Linux 6.1.0-51-amd64",
        "Debian GNU/Linux, with Linux 6.1.0-50-amd64",
    ]
    assert f"linux /vmlinuz-6.1.0-51-amd64 root={ROOT} ro {CMDLINE}\n" in entries[0]
    assert "initrd /initrd.img-6.1.0-51-amd64" in entries[0]
    assert "initrd" not in entries[1]
    assert text.count(f"search --no-floppy --fs-uuid --set=root {UUID}") == 3
    assert "terminal_output console serial" in text
    assert not text.startswith("\n")


def test_menu_without_serial_console_has_no_serial_terminal():
    text = render.grub_cfg([("6.1.0-50-amd64", True)], UUID, ROOT, "net.ifnames=0")
    assert "serial" not in text
    assert "ro net.ifnames=0\n" in text


def test_root_device_and_cmdline_come_from_the_plan(www_plan):
    # What Kvm.fixups passes to guestfix.bootloader is plain enough for the menu.
    check_menu(
        [], www_plan.boot_uuid, render.root_device(www_plan), render.kernel_cmdline(www_plan)
    )
    assert render.root_device(www_plan) == f"/dev/mapper/{www_plan.guest_vg}-root"
    assert render.kernel_cmdline(www_plan).startswith("net.ifnames=0")
    assert ("console=ttyS0,115200n8" in render.kernel_cmdline(www_plan)) == (
        www_plan.domain.serial_console
    )


@pytest.mark.skipif(shutil.which("grub-script-check") is None, reason="needs grub-common")
def test_menu_passes_grub_script_check(tmp_path):
    path = tmp_path / "grub.cfg"
    path.write_text(render.grub_cfg([("6.1.0-50-amd64", True)], UUID, ROOT, CMDLINE, True))
    result = subprocess.run(["grub-script-check", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
