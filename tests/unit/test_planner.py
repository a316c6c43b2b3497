"""The layout planner: sizes, partitions, renames, MACs, memory, lifecycle."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from xen2kvm.errors import PlanError
from xen2kvm.fstab import parse_fstab
from xen2kvm.planner import (
    ALIGN,
    DEFAULT_EXTENT,
    PV_METADATA,
    SECTOR,
    SourceVolume,
    generated_mac,
    lv_name_for,
    plan_domain,
    plan_guest,
    source_volumes,
)
from xen2kvm.units import GIB, MIB
from xen2kvm.xenconfig import parse_xen_config

from .conftest import WWW_SIZES


def test_volumes_follow_the_guest_fstab(www_domain, www_fstab):
    volumes = source_volumes("www", www_domain, www_fstab, WWW_SIZES)
    by_vdev = {v.vdev: (v.mountpoint, v.fstype) for v in volumes}
    assert by_vdev == {
        "xvda1": (None, "swap"),
        "xvda2": ("/", "ext3"),
        "xvda3": ("/var", "ext3"),
        "xvda4": ("/srv", "ext3"),
        "xvda5": ("/home", "ext3"),  # the fstab calls it /dev/sda5
    }


def test_matryoshka_layout_has_boot_outside_lvm_and_the_guest_vg_inside(www_plan):
    boot, pv = www_plan.partitions
    assert (boot.number, boot.type, boot.bootable) == (1, "83", True)
    assert boot.start * SECTOR == ALIGN
    assert boot.size * SECTOR == 512 * MIB
    assert (pv.number, pv.type) == (2, "8e")
    assert pv.start == boot.start + boot.size
    assert www_plan.guest_vg == "www"
    assert [v.name for v in www_plan.volumes] == ["root", "home", "srv", "var", "swap"]


def test_each_filesystem_is_at_least_its_source_rounded_to_the_extent(www_plan):
    for volume in www_plan.volumes:
        extra = 2 * GIB if volume.mountpoint == "/var" else 0
        assert volume.size >= volume.source.size + extra
        assert volume.size % DEFAULT_EXTENT == 0
        assert volume.size - (volume.source.size + extra) < DEFAULT_EXTENT
    var = next(v for v in www_plan.volumes if v.mountpoint == "/var")
    assert var.size == 10 * GIB + 4 * MIB  # 8G+3M, plus grow 2G, rounded up to 4M


def test_the_host_lv_holds_everything_with_room_for_lvm_and_the_table(www_plan):
    pv = www_plan.partitions[1]
    lvs = sum(v.size for v in www_plan.volumes)
    pv_bytes = pv.size * SECTOR
    assert pv_bytes >= PV_METADATA + lvs + DEFAULT_EXTENT
    end = (pv.start + pv.size) * SECTOR
    assert www_plan.host_lv_size >= end
    assert www_plan.host_lv_size % DEFAULT_EXTENT == 0
    assert www_plan.disk_path == "/dev/vg_guests/www.example.net"


def test_renames_cover_every_xen_name_the_guest_may_use(www_plan):
    assert www_plan.renames["/dev/xvda2"] == "/dev/mapper/www-root"
    assert www_plan.renames["/dev/sda5"] == "/dev/mapper/www-home"
    assert www_plan.renames["/dev/xvda1"] == "/dev/mapper/www-swap"


def test_hyphens_in_vg_names_are_doubled_in_mapper_paths(fleet, www_domain, www_fstab):
    guest = dataclasses.replace(fleet.guests["www.example.net"], guest_vg="www-vg")
    volumes = source_volumes(guest.name, www_domain, www_fstab, WWW_SIZES)
    plan = plan_guest(guest, fleet.kvm_hosts["kvm-a.example.net"], www_domain, volumes)
    assert plan.renames["/dev/xvda2"] == "/dev/mapper/www--vg-root"


def test_plain_layout_uses_logical_partitions_beyond_three_volumes(fleet, www_domain, www_fstab):
    guest = dataclasses.replace(fleet.guests["www.example.net"], layout="plain")
    volumes = source_volumes(guest.name, www_domain, www_fstab, WWW_SIZES)
    plan = plan_guest(guest, fleet.kvm_hosts["kvm-a.example.net"], www_domain, volumes)
    numbers = [(p.number, p.type) for p in plan.partitions]
    assert numbers == [(1, "83"), (2, "5"), (5, "83"), (6, "83"), (7, "83"), (8, "83"), (9, "82")]
    extended = plan.partitions[1]
    for logical in plan.partitions[2:]:
        assert extended.start < logical.start
        assert logical.start + logical.size <= extended.start + extended.size
    assert plan.renames["/dev/xvda2"] == "/dev/vda5"
    assert plan.guest_vg is None
    ends = sorted((p.start, p.start + p.size) for p in plan.partitions if p.type != "5")
    for (_, end), (start, _) in itertools.pairwise(ends):
        assert end <= start, "partitions overlap"


def test_plain_layout_with_few_volumes_stays_primary(fleet):
    domain = parse_xen_config(
        "name='small'\nmemory=256\n"
        "disk=['phy:/dev/vg0/s-root,xvda1,w','phy:/dev/vg0/s-swap,xvda2,w']\n",
        "small.cfg",
    )
    fstab = parse_fstab("/dev/xvda1 / ext4 defaults 0 1\n/dev/xvda2 none swap sw 0 0\n")
    guest = dataclasses.replace(fleet.guests["db.example.net"], layout="plain", name="small")
    sizes = {"/dev/vg0/s-root": GIB, "/dev/vg0/s-swap": 128 * MIB}
    plan = plan_guest(
        guest,
        fleet.kvm_hosts["kvm-b.example.net"],
        domain,
        source_volumes("small", domain, fstab, sizes),
    )
    assert [(p.number, p.type) for p in plan.partitions] == [(1, "83"), (2, "83"), (3, "82")]


def test_macs_are_kept_from_xen_lowercased(www_plan):
    assert [nic.mac for nic in www_plan.domain.nics] == ["00:16:3e:5a:01:01"]
    assert www_plan.domain.nics[0].bridge == "br0"
    assert www_plan.domain.nics[0].ips == ("203.0.113.101", "203.0.113.102", "203.0.113.103")


TWO_VIFS = (
    "name = 'fw'\nmemory = 256\ndisk = ['phy:/dev/vg0/fw,xvda2,w']\n"
    "vif = ['mac=00:16:3e:00:00:01,bridge=xenbr0', 'mac=00:16:3e:00:00:02,bridge={second}']\n"
)


def _nics(fleet, bridges, second="xenbr1"):
    guest = fleet.guests["www.example.net"]
    kvm = dataclasses.replace(fleet.kvm_hosts["kvm-a.example.net"], bridges=bridges)
    return plan_domain(guest, kvm, parse_xen_config(TWO_VIFS.format(second=second))).nics


def test_each_nic_joins_the_kvm_bridge_its_xen_bridge_maps_to(fleet):
    nics = _nics(fleet, {"xenbr0": "br0", "xenbr1": "br1"})
    assert [(nic.mac, nic.bridge) for nic in nics] == [
        ("00:16:3e:00:00:01", "br0"),
        ("00:16:3e:00:00:02", "br1"),
    ]


def test_vifs_on_several_xen_bridges_one_unmapped_are_refused(fleet):
    with pytest.raises(PlanError) as info:
        _nics(fleet, {"xenbr0": "br0"})
    assert str(info.value) == (
        "www.example.net: vif: vif 1 is on the Xen bridge 'xenbr1', which kvm-a.example.net's "
        "bridges does not map, and its other vifs are on xenbr0: on KVM they would all join "
        "br0. Add the KVM bridge of that network to kvm-a.example.net's bridges in the "
        "inventory (bridges: {xenbr1: <KVM bridge>})"
    )


def test_a_vif_without_bridge_beside_an_unmapped_one_is_refused(fleet):
    config = TWO_VIFS.replace(",bridge=xenbr0", "").format(second="xenbr1")
    kvm = fleet.kvm_hosts["kvm-a.example.net"]
    with pytest.raises(PlanError, match=r"vif 1 is on the Xen bridge 'xenbr1'.* Xen's default"):
        plan_domain(fleet.guests["www.example.net"], kvm, parse_xen_config(config))


@pytest.mark.parametrize("bridges", [{}, {"xenbr7": "br7"}])
def test_vifs_all_on_one_unmapped_xen_bridge_join_the_default_bridge(fleet, bridges):
    nics = _nics(fleet, bridges, second="xenbr0")
    assert [nic.bridge for nic in nics] == ["br0", "br0"]


def test_vifs_without_bridge_join_the_default_bridge_beside_a_mapped_one(fleet):
    config = TWO_VIFS.replace(",bridge=xenbr0", "").format(second="xenbr1")
    kvm = dataclasses.replace(fleet.kvm_hosts["kvm-a.example.net"], bridges={"xenbr1": "br1"})
    nics = plan_domain(fleet.guests["www.example.net"], kvm, parse_xen_config(config)).nics
    assert [nic.bridge for nic in nics] == ["br0", "br1"]


def test_new_macs_are_stable_and_local(fleet, www_domain, www_fstab):
    guest = dataclasses.replace(fleet.guests["www.example.net"], keep_macs=False)
    volumes = source_volumes(guest.name, www_domain, www_fstab, WWW_SIZES)
    kvm = fleet.kvm_hosts["kvm-a.example.net"]
    first = plan_guest(guest, kvm, www_domain, volumes)
    again = plan_guest(guest, kvm, www_domain, volumes)
    assert first.domain.nics[0].mac == again.domain.nics[0].mac == generated_mac(guest.name, 0)
    assert first.domain.nics[0].mac.startswith("52:54:00:")


def test_memory_vcpus_and_lifecycle_come_from_xen(www_plan):
    assert (www_plan.domain.memory_mib, www_plan.domain.current_memory_mib) == (2048, 1024)
    assert www_plan.domain.vcpus == 2
    assert www_plan.domain.lifecycle == {
        "on_poweroff": "destroy",
        "on_reboot": "restart",
        "on_crash": "restart",
    }
    assert www_plan.kernel_package == "linux-image-amd64"


def test_inventory_overrides_memory_and_vcpus(fleet, www_domain, www_fstab):
    guest = dataclasses.replace(fleet.guests["www.example.net"], memory_mib=4096, vcpus=4)
    volumes = source_volumes(guest.name, www_domain, www_fstab, WWW_SIZES)
    plan = plan_guest(guest, fleet.kvm_hosts["kvm-a.example.net"], www_domain, volumes)
    dom = plan.domain
    assert (dom.memory_mib, dom.current_memory_mib, dom.vcpus) == (4096, 4096, 4)


def test_lifecycle_without_libvirt_equivalent_falls_back_with_a_note(fleet, www_fstab):
    domain = parse_xen_config(
        "name='x'\nmemory=256\non_reboot='coredump-destroy'\non_crash='soft-reset'\n"
        "disk=['phy:/dev/vg0/x,xvda2,w']\n",
        "x.cfg",
    )
    fstab = parse_fstab("/dev/xvda2 / ext4 defaults 0 1\n")
    guest = dataclasses.replace(fleet.guests["db.example.net"], name="x")
    volumes = source_volumes("x", domain, fstab, {"/dev/vg0/x": GIB})
    plan = plan_guest(guest, fleet.kvm_hosts["kvm-b.example.net"], domain, volumes)
    assert plan.domain.lifecycle["on_reboot"] == "restart"
    assert plan.domain.lifecycle["on_crash"] == "restart"
    assert any("on_reboot=coredump-destroy" in note for note in plan.domain.notes)


def test_i386_guests_get_the_686_pae_kernel(fleet, www_domain, www_fstab):
    guest = dataclasses.replace(fleet.guests["lists.example.net"])
    volumes = source_volumes(guest.name, www_domain, www_fstab, WWW_SIZES)
    plan = plan_guest(guest, fleet.kvm_hosts["kvm-a.example.net"], www_domain, volumes)
    assert plan.kernel_package == "linux-image-686-pae"


def test_plans_are_deterministic(fleet, www_domain, www_fstab, www_plan):
    guest = fleet.guests["www.example.net"]
    volumes = source_volumes(guest.name, www_domain, www_fstab, WWW_SIZES)
    assert plan_guest(guest, fleet.kvm_hosts["kvm-a.example.net"], www_domain, volumes) == www_plan


@pytest.mark.parametrize(
    ("mountpoint", "expected"),
    [("/", "root"), ("/var", "var"), ("/var/lib/mysql", "var_lib_mysql"), (None, "swap")],
)
def test_lv_names(mountpoint, expected):
    assert lv_name_for(mountpoint, set()) == expected


def test_lv_names_never_collide():
    taken: set[str] = set()
    assert [lv_name_for(None, taken) for _ in range(3)] == ["swap", "swap2", "swap3"]


def _plan_with(fleet, config: str, fstab: str, sizes: dict[str, int]):
    domain = parse_xen_config(config, "bad.cfg")
    guest = dataclasses.replace(fleet.guests["db.example.net"], name="bad")
    volumes = source_volumes("bad", domain, parse_fstab(fstab), sizes)
    return plan_guest(guest, fleet.kvm_hosts["kvm-b.example.net"], domain, volumes)


@pytest.mark.parametrize(
    ("config", "fstab", "sizes", "field", "words"),
    [
        (
            "disk=['phy:/dev/vg0/b,xvda,w']\n",
            "/dev/xvda / ext4 defaults 0 1\n",
            {"/dev/vg0/b": GIB},
            "disk",
            "whole disk",
        ),
        (
            "disk=['phy:/dev/vg0/b,xvda2,w','phy:/dev/vg0/c,xvda3,w']\n",
            "/dev/xvda2 / ext4 defaults 0 1\n",
            {"/dev/vg0/b": GIB, "/dev/vg0/c": GIB},
            "fstab",
            "xvda3 (/dev/vg0/c) is in the Xen config but not in the guest's /etc/fstab",
        ),
        (
            "disk=['phy:/dev/vg0/b,xvda2,w']\n",
            "/dev/xvda2 /srv ext4 defaults 0 2\n",
            {"/dev/vg0/b": GIB},
            "fstab",
            "mounted at /",
        ),
        (
            "disk=['phy:/dev/vg0/b,xvda2,w']\n",
            "/dev/xvda2 / ext4 defaults 0 1\n",
            {},
            "size",
            "no size known for /dev/vg0/b",
        ),
        (
            "disk=['phy:/dev/vg0/b,xvda2,w','phy:/dev/vg0/c,xvda3,w']\n",
            "/dev/xvda2 / ext4 defaults 0 1\n/dev/xvda3 /boot ext4 defaults 0 2\n",
            {"/dev/vg0/b": GIB, "/dev/vg0/c": GIB},
            "fstab",
            "makes its own /boot",
        ),
        ("disk=[',hdc:cdrom,r']\n", "", {}, "disk", "lists no disks"),
    ],
)
def test_unplannable_guests_are_refused_with_guest_and_field(
    fleet, config, fstab, sizes, field, words
):
    with pytest.raises(PlanError) as info:
        _plan_with(fleet, "name='bad'\nmemory=256\n" + config, fstab, sizes)
    assert info.value.guest == "bad"
    assert info.value.field == field
    assert words in str(info.value)


def test_grow_of_an_unknown_mount_point_is_refused(fleet, www_domain, www_fstab):
    guest = dataclasses.replace(fleet.guests["www.example.net"], grow={"/opt": GIB})
    volumes = source_volumes(guest.name, www_domain, www_fstab, WWW_SIZES)
    with pytest.raises(PlanError, match=r"grow\./opt: no such mount point"):
        plan_guest(guest, fleet.kvm_hosts["kvm-a.example.net"], www_domain, volumes)


def test_summary_names_every_volume(www_plan):
    text = www_plan.summary()
    for volume in www_plan.volumes:
        assert volume.device in text
    assert "p1 /boot 512M" in text


def test_source_volume_sizes_must_be_positive(fleet, www_domain):
    volume = SourceVolume("xvda2", "/dev/vg0/x", 0, "ext4", "/")
    with pytest.raises(PlanError, match="has no size"):
        plan_guest(
            fleet.guests["www.example.net"],
            fleet.kvm_hosts["kvm-a.example.net"],
            parse_xen_config("memory=1\ndisk=['phy:/dev/vg0/x,xvda2,w']\n", "x.cfg"),
            [volume],
        )


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        (
            "builder = 'hvm'\ndisk = ['phy:/dev/vg0/w,hda,w']\n",
            "type",
            "an HVM guest",
        ),
        (
            "disk = ['file:/srv/xen/w-root.img,xvda2,w']\n",
            "disk",
            "is an image file (file:, raw)",
        ),
        (
            "disk = ['tap:qcow2:/srv/xen/w-root.qcow2,xvda2,w']\n",
            "disk",
            "is an image file (tap:, qcow2)",
        ),
    ],
    ids=["hvm", "file-image", "qcow2-image"],
)
def test_guests_of_other_kinds_are_refused_in_the_plan(config, field, words):
    domain = parse_xen_config(f"name = 'w'\nmemory = 512\n{config}", "w.cfg")
    fstab = parse_fstab("/dev/xvda2 / ext4 defaults 0 1\n/dev/hda1 / ext4 defaults 0 1\n")
    with pytest.raises(PlanError) as refused:
        source_volumes("w", domain, fstab, {})
    assert (refused.value.field, words in str(refused.value)) == (field, True), refused.value


def test_the_inventory_s_kernel_replaces_the_arch_s_generic_one(fleet, www_domain, www_fstab):
    guest = dataclasses.replace(fleet.guests["www.example.net"], kernel="linux-image-cloud-amd64")
    volumes = source_volumes(guest.name, www_domain, www_fstab, WWW_SIZES)
    plan = plan_guest(guest, fleet.kvm_hosts["kvm-a.example.net"], www_domain, volumes)
    assert plan.kernel_package == "linux-image-cloud-amd64"
