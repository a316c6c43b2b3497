"""Issue #11, item 4: a guest's fstab names filesystems by ``UUID=`` and ``LABEL=``.

The planner matches such an entry to the Xen disk whose filesystem has that UUID or label
(as blkid reads it on the dom0's LV, frozen with the plan inputs); the new filesystem keeps
the UUID and the label, so the rendered fstab keeps the entry as the guest wrote it. An
entry that names no disk, or more than one, and a partition's tags, are refused in the
plan with one line naming the guest, the field and the fstab line."""

from __future__ import annotations

import dataclasses

import pytest

from xen2kvm import render
from xen2kvm.errors import PlanError
from xen2kvm.filesystems import fstab_tag, label_problem
from xen2kvm.fstab import parse_fstab
from xen2kvm.planinputs import PlanInputs, identity
from xen2kvm.planner import SourceVolume, plan_guest, source_volumes
from xen2kvm.units import GIB, MIB
from xen2kvm.xenconfig import parse_xen_config

from .test_render import findmnt_verify

CONFIG = (
    "name='mail'\nmemory=256\n"
    "disk=['phy:/dev/xenvg/mail-swap,xvda1,w','phy:/dev/xenvg/mail-root,xvda2,w',"
    "'phy:/dev/xenvg/mail-var,xvda3,w','phy:/dev/xenvg/mail-srv,xvda4,w']\n"
)
SIZES = {
    "/dev/xenvg/mail-swap": 128 * MIB,
    "/dev/xenvg/mail-root": 2 * GIB,
    "/dev/xenvg/mail-var": GIB,
    "/dev/xenvg/mail-srv": GIB,
}
SRV_UUID = "5ab1e000-0000-4000-8000-00000000a004"
# What blkid reads on the dom0 (blkid -o export, as the BlkidFilesystems fact gives it).
FILESYSTEMS = {
    "/dev/xenvg/mail-swap": {"TYPE": "swap", "UUID": "5ab1e000-0000-4000-8000-00000000a001"},
    "/dev/xenvg/mail-root": {
        "TYPE": "ext4",
        "UUID": "5ab1e000-0000-4000-8000-00000000a002",
        "LABEL": "mail-root",
    },
    "/dev/xenvg/mail-var": {
        "TYPE": "ext4",
        "UUID": "5ab1e000-0000-4000-8000-00000000a003",
        "LABEL": "mail-var",
    },
    "/dev/xenvg/mail-srv": {"TYPE": "ext4", "UUID": SRV_UUID},
}
FSTAB = (
    "/dev/xvda2 / ext4 errors=remount-ro 0 1\n"
    "LABEL=mail-var /var ext4 defaults 0 2\n"
    f"UUID={SRV_UUID} /srv ext4 defaults 0 2\n"
    "/dev/xvda1 none swap sw 0 0\n"
    "proc /proc proc defaults 0 0\n"
)


def volumes(fstab: str = FSTAB, filesystems=FILESYSTEMS) -> list[SourceVolume]:
    domain = parse_xen_config(CONFIG, "mail.cfg")
    return source_volumes("mail", domain, parse_fstab(fstab), SIZES, filesystems)


def refused(fstab: str = FSTAB, filesystems=FILESYSTEMS) -> PlanError:
    with pytest.raises(PlanError) as info:
        volumes(fstab, filesystems)
    assert info.value.guest == "mail"
    assert "\n" not in str(info.value)
    return info.value


def with_line(line: str, filesystems=FILESYSTEMS) -> PlanError:
    """The fstab with its /srv line (line 3) replaced."""
    lines = FSTAB.splitlines()
    lines[2] = line
    return refused("\n".join(lines) + "\n", filesystems)


def test_label_and_uuid_entries_name_their_disks():
    by_vdev = {v.vdev: (v.mountpoint, v.fstype, v.options) for v in volumes()}
    assert by_vdev == {
        "xvda1": (None, "swap", "sw"),
        "xvda2": ("/", "ext4", "errors=remount-ro"),
        "xvda3": ("/var", "ext4", "defaults"),
        "xvda4": ("/srv", "ext4", "defaults"),
    }


def test_each_volume_carries_its_source_s_uuid_and_label():
    found = {v.vdev: (v.uuid, v.label) for v in volumes()}
    assert found == {
        "xvda1": ("5ab1e000-0000-4000-8000-00000000a001", None),
        "xvda2": ("5ab1e000-0000-4000-8000-00000000a002", "mail-root"),
        "xvda3": ("5ab1e000-0000-4000-8000-00000000a003", "mail-var"),
        "xvda4": (SRV_UUID, None),
    }


def test_a_uuid_matches_whatever_its_case_and_quotes():
    fstab = FSTAB.replace(f"UUID={SRV_UUID}", f'UUID="{SRV_UUID.upper()}"')
    assert {v.vdev: v.mountpoint for v in volumes(fstab)}["xvda4"] == "/srv"


def test_a_swap_named_by_uuid_is_matched():
    fstab = FSTAB.replace("/dev/xvda1 none", "UUID=5ab1e000-0000-4000-8000-00000000a001 none")
    assert {v.vdev: v.fstype for v in volumes(fstab)}["xvda1"] == "swap"


def test_a_label_escaped_in_the_fstab_matches_blkid_s_label():
    filesystems = {**FILESYSTEMS, "/dev/xenvg/mail-var": {"TYPE": "ext4", "LABEL": "mail var"}}
    fstab = FSTAB.replace("LABEL=mail-var", "LABEL=mail\\040var")
    assert {v.vdev: v.label for v in volumes(fstab, filesystems)}["xvda3"] == "mail var"


def test_without_filesystems_read_device_names_still_plan():
    """Plan inputs frozen by an older xen2kvm hold no filesystems: a guest whose fstab
    names its disks by device plans as before, with no UUID or label to keep."""
    fstab = FSTAB.replace("LABEL=mail-var", "/dev/xvda3").replace(f"UUID={SRV_UUID}", "/dev/xvda4")
    assert all(v.uuid is None and v.label is None for v in volumes(fstab, None))


REFUSED = [
    (
        "UUID=5ab1e000-0000-4000-8000-0000000000ff /srv ext4 defaults 0 2",
        "no disk of its Xen config holds a filesystem with UUID "
        "'5ab1e000-0000-4000-8000-0000000000ff'",
    ),
    ("LABEL=mail-srv /srv ext4 defaults 0 2", "with LABEL 'mail-srv'"),
    ("LABEL=MAIL-VAR /srv ext4 defaults 0 2", "with LABEL 'MAIL-VAR'"),  # labels: exact
    ("PARTUUID=4d34989f-04 /srv ext4 defaults 0 2", "PARTUUID= names a partition"),
    ("PARTLABEL=srv /srv ext4 defaults 0 2", "PARTLABEL= names a partition"),
]


@pytest.mark.parametrize(("line", "why"), REFUSED, ids=["uuid", "label", "case", "pu", "pl"])
def test_a_tag_naming_no_disk_is_refused_naming_the_line(line, why):
    error = with_line(line)
    assert error.field == "fstab"
    assert f"line 3 ({line!r})" in str(error)
    assert why in str(error)


def test_a_uuid_on_two_disks_is_refused_as_ambiguous():
    # A cloned LV: the same UUID on /srv and on /var.
    var = {**FILESYSTEMS["/dev/xenvg/mail-var"], "UUID": SRV_UUID}
    twin = {**FILESYSTEMS, "/dev/xenvg/mail-var": var}
    error = with_line(f"UUID={SRV_UUID} /srv ext4 defaults 0 2", twin)
    assert error.field == "fstab"
    assert (
        f"UUID '{SRV_UUID}' is on xvda3 (/dev/xenvg/mail-var), xvda4 (/dev/xenvg/mail-srv), "
        "so the guest mounts either of them: give each filesystem its own uuid on Xen first"
    ) in str(error)


def test_a_label_on_two_disks_is_refused_as_ambiguous():
    twin = {**FILESYSTEMS, "/dev/xenvg/mail-srv": {"TYPE": "ext4", "LABEL": "mail-var"}}
    error = refused(filesystems=twin)
    assert "LABEL 'mail-var' is on xvda3" in str(error) and "xvda4" in str(error)


def test_a_tag_without_the_filesystems_read_is_refused():
    error = refused(filesystems=None)
    assert error.field == "fstab"
    assert "line 2 ('LABEL=mail-var /var ext4 defaults 0 2')" in str(error)
    assert "frozen by an older xen2kvm" in str(error)


def test_a_tag_for_a_filesystem_outside_the_xen_config_is_refused():
    """A LABEL= line of a disk the Xen config does not give the guest: it mounts nothing
    on Xen today and would mount nothing on KVM; the operator decides."""
    fstab = FSTAB + "LABEL=backup /mnt/backup ext4 defaults 0 2\n"
    assert "line 6 ('LABEL=backup /mnt/backup ext4 defaults 0 2')" in str(refused(fstab))


def test_a_disk_named_by_nothing_is_still_refused():
    fstab = FSTAB.replace(f"UUID={SRV_UUID} /srv ext4 defaults 0 2\n", "")
    error = refused(fstab)
    assert "xvda4 (/dev/xenvg/mail-srv) is in the Xen config but not in" in str(error)


def test_an_xfs_label_over_12_bytes_is_refused():
    long = {**FILESYSTEMS, "/dev/xenvg/mail-var": {"TYPE": "ext4", "LABEL": "mail-var-spool"}}
    fstab = FSTAB.replace("LABEL=mail-var /var ext4", "LABEL=mail-var-spool /var xfs")
    error = refused(fstab, long)
    assert error.field == "label"
    assert (
        "xvda3 (/dev/xenvg/mail-var): its label 'mail-var-spool' is 14 bytes; xfs labels "
        "hold at most 12 (the new xfs keeps the source's label): shorten it on Xen first"
    ) in str(error)


def test_an_ext4_label_of_16_bytes_is_kept():
    label = "mail-var-spool16"
    full = {**FILESYSTEMS, "/dev/xenvg/mail-var": {"TYPE": "ext4", "LABEL": label}}
    fstab = FSTAB.replace("LABEL=mail-var", f"LABEL={label}")
    assert {v.vdev: v.label for v in volumes(fstab, full)}["xvda3"] == label


@pytest.mark.parametrize(
    ("fstype", "label", "problem"),
    [
        ("ext4", "a" * 16, None),
        ("ext4", "a" * 17, "17 bytes; ext4 labels hold at most 16"),
        ("xfs", "a" * 12, None),
        ("xfs", "a" * 13, "13 bytes; xfs labels hold at most 12"),
        ("swap", "é" * 9, "18 bytes; swap labels hold at most 16"),
        ("btrfs", "a" * 40, None),  # not made by xen2kvm: disk.filesystem refuses the type
    ],
)
def test_label_limits_count_bytes(fstype, label, problem):
    assert label_problem(fstype, label) == problem


@pytest.mark.parametrize(
    ("device", "tag"),
    [
        ("UUID=5ab1e000", ("UUID", "5ab1e000")),
        ('LABEL="my root"', ("LABEL", "my root")),
        ("LABEL='x'", ("LABEL", "x")),
        ("PARTUUID=4d34989f-02", ("PARTUUID", "4d34989f-02")),
        ("PARTLABEL=srv", ("PARTLABEL", "srv")),
        ("/dev/xvda2", None),
        ("uuid=5ab1e000", None),  # libmount's tags are upper case
        ("nfs:/export", None),
        ("proc", None),
    ],
)
def test_fstab_tag(device, tag):
    assert fstab_tag(device) == tag


def test_the_rendered_fstab_keeps_tag_entries_as_the_guest_wrote_them(fleet, tmp_path):
    guest = dataclasses.replace(fleet.guests["www.example.net"], name="mail", guest_vg="mail")
    domain = parse_xen_config(CONFIG, "mail.cfg")
    plan = plan_guest(guest, fleet.kvm_hosts[guest.kvm_host], domain, volumes())
    text = render.fstab(plan, parse_fstab(FSTAB))
    entries = {e.mountpoint: e.device for e in parse_fstab(text)}
    assert entries["/var"] == "LABEL=mail-var"
    assert entries["/srv"] == f"UUID={SRV_UUID}"
    assert entries["/"] == "/dev/mapper/mail-root"
    assert entries["none"] == "/dev/mapper/mail-swap"
    assert entries["/boot"] == f"UUID={plan.boot_uuid}"
    path = tmp_path / "fstab"
    path.write_text(text)
    output, findings = findmnt_verify(path)
    assert "0 parse errors" in output
    assert findings == []


def test_the_new_filesystems_are_planned_with_the_source_s_uuid_and_label(fleet):
    guest = dataclasses.replace(fleet.guests["www.example.net"], name="mail", guest_vg="mail")
    domain = parse_xen_config(CONFIG, "mail.cfg")
    plan = plan_guest(guest, fleet.kvm_hosts[guest.kvm_host], domain, volumes())
    kept = {v.mountpoint: (v.source.uuid, v.source.label) for v in plan.volumes}
    assert kept["/srv"] == (SRV_UUID, None)
    assert kept["/var"] == ("5ab1e000-0000-4000-8000-00000000a003", "mail-var")


def test_plan_inputs_keep_the_filesystems_through_json():
    inputs = PlanInputs(CONFIG, FSTAB, SIZES, FILESYSTEMS)
    assert '"version": 2' in inputs.to_json()
    assert PlanInputs.from_json(inputs.to_json()) == inputs


def test_plan_inputs_frozen_by_an_older_xen2kvm_have_no_filesystems():
    old = '{"fstab": "", "sizes": {"/dev/x": 1}, "version": 1, "xen_config": ""}'
    assert PlanInputs.from_json(old).filesystems is None
    assert PlanInputs("", "", {"/dev/x": 1}).to_json() == (
        '{\n  "fstab": "",\n  "sizes": {\n    "/dev/x": 1\n  },\n  "version": 1,\n'
        '  "xen_config": ""\n}\n'
    )


@pytest.mark.parametrize(
    ("found", "kept"),
    [
        # blkid -o export /dev/xenvg/mail-var: what the plan keeps of it
        (
            {"/dev/xenvg/mail-var": {"LABEL": "v", "UUID": "u", "BLOCK_SIZE": "4096",
                                     "TYPE": "ext4"}},
            {"TYPE": "ext4", "UUID": "u", "LABEL": "v"},
        ),
        # blkid printed another name of the same device
        ({"/dev/mapper/xenvg-mail--var": {"TYPE": "swap"}}, {"TYPE": "swap"}),
        ({}, {}),  # nothing on it
    ],
)  # fmt: skip
def test_identity_keeps_type_uuid_and_label(found, kept):
    assert identity(found, "/dev/xenvg/mail-var") == kept
