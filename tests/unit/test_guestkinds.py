"""xen2kvm.guestkinds: the kinds of guest a Debian Xen fleet has, each moved or refused
while planning with one line naming the guest, what was found and what to do."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from pyinfra.api.exceptions import OperationError

import tasks.move
from facts.disk import BlkidFilesystems
from operations import disk
from xen2kvm import guestkinds, requirements
from xen2kvm.errors import PlanError
from xen2kvm.fstab import parse_fstab
from xen2kvm.guestkinds import (
    check_filesystems,
    check_fstab_types,
    filesystem_problem,
    initramfs_problem,
    partition_disks,
    userland,
    xen_boot,
)
from xen2kvm.inventory import load_fleet
from xen2kvm.planinputs import PlanInputs
from xen2kvm.planner import plan_guest, source_volumes
from xen2kvm.rehome import RehomeError, check_rehomable, rehome_config
from xen2kvm.xenconfig import load_xen_config, parse_xen_config

ROOT = Path(__file__).resolve().parents[2]
XEN = ROOT / "tests" / "data" / "xen"


@pytest.fixture(scope="module")
def fleet():
    return load_fleet(ROOT / "inventory" / "lab.yml")


# Boot --------------------------------------------------------------------------------

BOOTS = {
    "xen-tools-xm-pygrub": "pygrub",
    "xen-tools-xm-kernel": "kernel",
    "xen-tools-xl": "kernel",
    "xm-pv-grub-legacy": "pvgrub",
    "xl-pvgrub2-grub-xen": "pvgrub",
    "xlexample.pvlinux": "kernel",
}


@pytest.mark.parametrize(("name", "kind"), sorted(BOOTS.items()))
def test_how_each_corpus_guest_boots_on_xen(name, kind):
    assert xen_boot(load_xen_config(XEN / f"{name}.cfg")).kind == kind


def test_a_pvh_grub_image_is_pvgrub_too():
    domain = parse_xen_config("kernel = '/usr/lib/grub-xen/grub-i386-xen_pvh.bin'\n", "c")
    assert xen_boot(domain).kind == "pvgrub"


def test_a_pygrub_guest_with_partition_disks_is_planned_for_kvm(fleet):
    # The migration never boots the Xen way: prepare installs a kernel, grub goes onto the
    # new disk with xen2kvm's menu, and /boot/grub is kept out of every copy.
    guest, kvm = fleet.guests["web1"], fleet.kvm_hosts["kvm1"]
    domain = load_xen_config(XEN / "xen-tools-xm-pygrub.cfg")
    fstab = parse_fstab(
        "/dev/xvda2 / ext4 errors=remount-ro 0 1\n/dev/xvda3 /var ext4 defaults 0 2\n"
        "/dev/xvda1 none swap sw 0 0\n"
    )
    sizes = {disk.target: 2 * 1024**3 for disk in domain.disks}
    plan = plan_guest(guest, kvm, domain, source_volumes("web1", domain, fstab, sizes))
    assert [v.mountpoint for v in plan.volumes] == ["/", "/var", None]
    note = guestkinds.kvm_boot_note(xen_boot(domain))
    assert note and "its own /boot/grub is never copied" in note
    from tasks.destinations.kvm import Kvm

    assert "/boot/grub/" in Kvm.own_files, "the guest's menu.lst or grub.cfg must not be copied"


@pytest.mark.parametrize(
    "name", ["xen-tools-xm-pygrub", "xm-pv-grub-legacy", "xl-pvgrub2-grub-xen"]
)
def test_a_guest_booting_its_own_kernel_is_not_rehomed_while_planning(name):
    domain = load_xen_config(XEN / f"{name}.cfg")
    with pytest.raises(PlanError) as info:
        check_rehomable("legacy2", domain)
    said = str(info.value)
    assert said.startswith(f"legacy2: rehome_to: {domain.filename}: boots its own kernel (")
    assert "move it to KVM (kvm_host" in said


def test_the_cutover_refuses_it_with_the_plan_s_words():
    text = (XEN / "xl-pvgrub2-grub-xen.cfg").read_text()
    with pytest.raises(PlanError) as planned:
        check_rehomable("db02", parse_xen_config(text, "xen1:/etc/xen/db02.cfg"))
    with pytest.raises(RehomeError) as cutover:
        rehome_config(text, "6.1.0-35-amd64", {}, "xen1:/etc/xen/db02.cfg")
    assert str(cutover.value) in str(planned.value)


def test_a_guest_booting_the_dom0_kernel_is_rehomable():
    check_rehomable("web01", load_xen_config(XEN / "xen-tools-xm-kernel.cfg"))


# Filesystems -------------------------------------------------------------------------


def blkid_case(name: str) -> dict:
    """What BlkidFilesystems makes of a captured fixture's output."""
    case = yaml.safe_load((ROOT / "tests/facts/disk.BlkidFilesystems" / name).read_text())
    return BlkidFilesystems().process(case["output"].splitlines())


def test_the_supported_filesystems_are_one_vocabulary():
    assert set(guestkinds.FILESYSTEMS) == set(requirements.MKFS) == set(disk.FILESYSTEMS)
    assert set(disk.LABEL_LIMITS) == set(guestkinds.FILESYSTEMS)


@pytest.mark.parametrize(
    ("device", "words"),
    [
        ("btrfs.img", "holds btrfs: its subvolumes and snapshots are not recreated"),
        ("luks.img", "holds a LUKS container (crypto_LUKS)"),
        ("/dev/loop16", "holds an LVM physical volume (LVM2_member)"),
    ],
)
def test_what_a_move_cannot_recreate_is_refused_naming_the_lv_and_its_type(device, words):
    found = blkid_case("local_unmovable_kinds.yaml")
    with pytest.raises(PlanError) as info:
        check_filesystems("db02", [("xvda3", device)], found)
    said = str(info.value)
    assert said.startswith(f"db02: disk: {device} (xvda3) {words}")
    assert "xen2kvm makes ext2, ext3, ext4, xfs and swap only" in said
    assert said.endswith("keep the guest on Xen, or move that data onto one of those first")


def test_the_lab_s_own_filesystems_pass():
    found = blkid_case("lab_devices.yaml")  # vda1, vda2: ext4; vdb: the host's own PV
    check_filesystems("web1", [("xvda1", "/dev/vda1"), ("xvda2", "/dev/vda2")], found)


@pytest.mark.parametrize(
    ("found", "words"),
    [
        ({"TYPE": "reiserfs"}, "holds reiserfs, a filesystem xen2kvm does not make"),
        ({"TYPE": "zfs_member"}, "holds a ZFS pool member"),
        ({"PTTYPE": "dos", "PTUUID": "cade1adf"}, "holds a partition table (dos)"),
    ],
)
def test_other_signatures(found, words):
    problem = filesystem_problem(found)
    assert problem and problem.startswith(words)


@pytest.mark.parametrize("found", [{"TYPE": "ext4"}, {"TYPE": "xfs"}, {"TYPE": "swap"}, {}])
def test_what_a_move_recreates_or_blkid_cannot_tell_is_left_to_fstab(found):
    assert filesystem_problem(found) is None


def test_only_a_pv_guest_s_partition_disks_are_looked_at():
    text = (
        "disk = ['phy:/dev/vg0/a,xvda2,w', 'phy:/dev/vg0/b,xvdb,w', "
        "'file:/srv/x.iso,xvdc1:cdrom,r']\n"
    )
    assert partition_disks(parse_xen_config(text, "c")) == [("xvda2", "/dev/vg0/a")]
    hvm = parse_xen_config("type = 'hvm'\n" + text, "c")
    assert partition_disks(hvm) == []


@pytest.mark.parametrize(
    ("fstype", "found", "words"),
    [
        ("auto", {"TYPE": "ext4"}, "/ (xvda2, /dev/vg0/a) is of type 'auto' in the guest's "
         "fstab; the new filesystem is made of that type and xen2kvm makes ext2, ext3, ext4, "
         "xfs and swap only: write ext4, as blkid finds it, in its fstab line"),
        ("reiserfs", {}, "fix its fstab line"),
        ("ext4", {"TYPE": "xfs"}, "/ (xvda2, /dev/vg0/a) is ext4 in the guest's fstab but "
         "blkid finds xfs on the dom0: fix the type in its fstab line"),
    ],
)  # fmt: skip
def test_a_fstab_type_no_mkfs_of_ours_makes_is_refused(fstype, found, words):
    with pytest.raises(PlanError, match=r"^db02: fstab: ") as info:
        check_fstab_types("db02", [("xvda2", "/dev/vg0/a", fstype, "/")], {"/dev/vg0/a": found})
    assert words in str(info.value)


def test_an_ext3_mounted_as_ext4_is_made_ext4():
    check_fstab_types(
        "db02", [("xvda2", "/dev/vg0/a", "ext4", "/")], {"/dev/vg0/a": {"TYPE": "ext3"}}
    )


# The plan's order: a LUKS disk is named as such, not as "not in the guest's fstab" ------


LUKS_CONFIG = (
    "name = 'web1'\nmemory = 512\n"
    "disk = ['phy:/dev/xenvg/web1-root,xvda2,w', 'phy:/dev/xenvg/web1-data,xvda3,w']\n"
)
LUKS_FSTAB = "/dev/xvda2 / ext4 defaults 0 1\n/dev/mapper/data /srv ext4 defaults 0 2\n"


class _NoJournal:
    def get_fact(self, *_args, **_kwargs):
        return []


def test_the_plan_names_a_luks_disk_before_fstab_matching(monkeypatch, fleet):
    monkeypatch.setattr(tasks.move, "fleet_for", lambda _host: fleet)
    monkeypatch.setattr(tasks.move, "frozen_inputs", lambda *_args: None)
    found = {
        "/dev/xenvg/web1-root": {"TYPE": "ext4"},
        "/dev/xenvg/web1-data": {"TYPE": "crypto_LUKS", "UUID": "1ec4dfa9"},
    }  # blkid on the dom0, in the plan's inputs
    sizes = {"/dev/xenvg/web1-root": 1 << 31}
    monkeypatch.setattr(
        tasks.move, "live_inputs", lambda _guest: PlanInputs(LUKS_CONFIG, LUKS_FSTAB, sizes, found)
    )
    monkeypatch.setattr(tasks.move, "inventory", SimpleNamespace(get_host=lambda _n: _NoJournal()))
    with pytest.raises(OperationError) as info:
        tasks.move._move(fleet.guests["web1"], need_plan=True)
    assert str(info.value).startswith(
        "web1: disk: /dev/xenvg/web1-data (xvda3) holds a LUKS container (crypto_LUKS)"
    )


# Initramfs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("states", "words"),
    [
        ({"dracut": "installed", "dracut-core": "installed"},
         "builds its initramfs with dracut (dpkg: dracut installed, dracut-core installed); "
         "prepare installs initramfs-tools"),
        ({"dracut-core": "half-configured"}, "with dracut (dpkg: dracut-core half-configured)"),
        ({"tiny-initramfs": "installed"}, "with tiny-initramfs (dpkg: tiny-initramfs installed)"),
    ],
)  # fmt: skip
def test_a_guest_whose_initramfs_another_tool_builds_is_refused(states, words):
    said = initramfs_problem(states)
    assert said is not None
    assert words in said
    fix = "switch it to initramfs-tools first (apt-get install initramfs-tools, then check"
    assert said.endswith(f"{fix} that it still boots), or keep it on Xen")


@pytest.mark.parametrize(
    "states",
    [{}, {"dracut": "config-files", "dracut-core": "not-installed"}, {"bash": "installed"}],
    ids=["none", "removed", "others"],
)
def test_a_guest_without_dracut_files_keeps_to_initramfs_tools(states):
    assert initramfs_problem(states) is None


def test_what_prepare_installs_is_what_the_plan_checks_for():
    # The check exists because prepare installs initramfs-tools and writes its settings.
    source = (ROOT / "tasks" / "destinations" / "kvm.py").read_text()
    assert '"initramfs-tools"' in source
    assert "/etc/initramfs-tools/" in source
    assert "initramfs-tools" not in guestkinds.INITRAMFS_TOOLS


# Userland ----------------------------------------------------------------------------


def release(version: str, codename: str) -> dict[str, str]:
    return {"ID": "debian", "VERSION_ID": version, "VERSION_CODENAME": codename}


@pytest.mark.parametrize(
    ("version", "codename"), [("11", "bullseye"), ("12", "bookworm"), ("13", "trixie")]
)
def test_debian_11_12_and_13_are_moved(version, codename):
    said = userland(release(version, codename), "amd64", installs_kernel=True)
    assert said.startswith(f"Debian {version} ({codename})")


def test_bullseye_is_said_as_its_release_alone():
    # Nothing of a move is missing from it: its rsync serves the migration key as later ones.
    assert userland(release("11", "bullseye"), "i386", installs_kernel=True) == (
        "Debian 11 (bullseye)"
    )


@pytest.mark.parametrize(
    ("found", "words"),
    [
        ({"ID": "ubuntu", "PRETTY_NAME": "Ubuntu 24.04.1 LTS", "VERSION_ID": "24.04"},
         "runs Ubuntu 24.04.1 LTS (ID=ubuntu), which xen2kvm does not support yet: Ubuntu "
         "names its kernel and grub packages otherwise"),
        ({"ID": "devuan", "NAME": "Devuan GNU/Linux", "ID_LIKE": "debian"},
         "runs Devuan GNU/Linux (ID=devuan): xen2kvm moves Debian guests only"),
        (release("10", "buster"), "runs Debian 10: xen2kvm is made for Debian 11, 12 and 13"),
        (release("9", "stretch"), "upgrade the guest to one of them first"),
        ({"ID": "debian", "VERSION_CODENAME": "forky"}, "runs Debian forky: xen2kvm is made"),
        ({}, "has no /etc/os-release"),
    ],
)  # fmt: skip
def test_other_distributions_and_releases_are_refused(found, words):
    with pytest.raises(ValueError) as info:
        userland(found, "amd64", installs_kernel=True)
    assert words in str(info.value)


def test_trixie_i386_has_no_kernel_for_kvm_but_is_rehomed():
    with pytest.raises(ValueError, match="no i386 kernel"):
        userland(release("13", "trixie"), "i386", installs_kernel=True)
    assert userland(release("13", "trixie"), "i386", installs_kernel=False).startswith("Debian 13")
