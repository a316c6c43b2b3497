"""Issue #11: a guest's new ext filesystems have its source's features, not the KVM host's
mke2fs defaults (Debian 13's add orphan_file, which Debian 11's e2fsck refuses, and
metadata_csum_seed, which the grub of Debian 11 and 12 cannot read).

Most of these run the real e2fsprogs on image files in tmp_path (nothing is mounted): the
source made as an older Debian's mke2fs makes it, its features read by the
``Dumpe2fsFeatures`` fact's own command, the plan computed from the inputs frozen as JSON,
and the ``disk.filesystem`` operation's own mkfs command run under Debian 13's
``/etc/mke2fs.conf`` (``MKE2FS_CONFIG``), as on the KVM host of the issue.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pyinfra.api import OperationError

from facts.disk import BlkidFilesystems, Dumpe2fsFeatures, Mke2fsFeatures
from tests.harness import run_operation
from xen2kvm.errors import PlanError
from xen2kvm.filesystems import (
    BLOCKS_32BIT_LIMIT,
    BOOT_FEATURES,
    FEATURE_BITS,
    NOT_MADE,
    feature_name,
    mkfs_features,
)
from xen2kvm.fstab import parse_fstab
from xen2kvm.planinputs import PlanInputs
from xen2kvm.planner import GuestPlan, plan_guest, source_volumes
from xen2kvm.units import MIB
from xen2kvm.xenconfig import parse_xen_config

# Debian 11's and 12's mke2fs defaults for ext4 (e2fsprogs 1.46.2 and 1.47.0).
BOOKWORM = [
    "has_journal", "ext_attr", "resize_inode", "dir_index", "filetype", "extent", "flex_bg",
    "sparse_super", "large_file", "huge_file", "dir_nlink", "extra_isize", "metadata_csum",
    "64bit",
]  # fmt: skip
# Debian 13's (e2fsprogs 1.47.2): the two features of the issue on top.
TRIXIE = [*BOOKWORM, "metadata_csum_seed", "orphan_file"]
# Debian 13's /etc/mke2fs.conf, where it matters here: its ext4 features.
TRIXIE_EXT4 = (
    "has_journal,extent,huge_file,flex_bg,metadata_csum,metadata_csum_seed,64bit,dir_nlink,"
    "extra_isize,orphan_file"
)
TRIXIE_CONF = f"""\
[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	default_mntopts = acl,user_xattr
	enable_periodic_fsck = 0
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384

[fs_types]
	ext3 = {{
		features = has_journal
	}}
	ext4 = {{
		features = {TRIXIE_EXT4}
	}}
	small = {{
		blocksize = 1024
		inode_ratio = 4096
	}}
	floppy = {{
		blocksize = 1024
		inode_ratio = 8192
	}}
"""
STATES = {"needs_recovery", "orphan_present"}  # what a mounted filesystem's superblock says

CONFIG = "name='small'\nmemory=256\ndisk=['phy:/dev/xenvg/small-root,xvda1,w','phy:/dev/xenvg/small-swap,xvda2,w']\n"  # noqa: E501
ROOT, SWAP = "/dev/xenvg/small-root", "/dev/xenvg/small-swap"
SOURCE_SIZE = 64 * MIB
SIZES = {ROOT: SOURCE_SIZE, SWAP: 16 * MIB}
GROW = 960 * MIB  # the new root is 16 times its source, past mke2fs's "small" (1 KiB blocks)


def _mke2fs_version() -> tuple[int, ...]:
    if not shutil.which("mke2fs"):
        return ()
    said = subprocess.run(["mke2fs", "-V"], capture_output=True, text=True).stderr
    found = re.search(r"mke2fs (\d+)\.(\d+)", said)
    return tuple(int(part) for part in found.groups()) if found else ()


needs_e2fsprogs = pytest.mark.skipif(
    _mke2fs_version() < (1, 47) or not shutil.which("debugfs"),
    reason="needs e2fsprogs 1.47 (mke2fs, dumpe2fs, debugfs): Debian 13's features",
)


def run(command: str, cwd: Path, conf: Path | None = None) -> str:
    env = {**os.environ, "MKE2FS_CONFIG": str(conf)} if conf else None
    done = subprocess.run(
        ["sh", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return done.stdout


def source(tmp_path: Path, name: str, features: list[str], mounted: bool = False) -> Path:
    """An ext4 image as an older Debian's mke2fs made it, its superblock as the dom0 sees
    it while the guest runs (needs_recovery, and orphan_present with an orphan file)."""
    path = tmp_path / name
    made = ",".join(["none", *features])
    run(f"mkfs.ext4 -q -F -O {made} -U 5ab1e000-0000-4000-8000-00000000c002 {path} 64M", tmp_path)
    if mounted:
        states = ["needs_recovery", *(["orphan_present"] if "orphan_file" in features else [])]
        run(f"debugfs -w -R 'feature {' '.join(states)}' {path}", tmp_path)
    return path


def listed(tmp_path: Path, *paths: Path) -> dict[str, list[str]]:
    """What the Dumpe2fsFeatures fact reads on these images, with its own command."""
    fact = Dumpe2fsFeatures()
    command = fact.command(devices=[str(path) for path in paths]).get_raw_value()
    return fact.process(run(command, tmp_path).splitlines())


def blkid(tmp_path: Path, path: Path) -> dict:
    fact = BlkidFilesystems()
    return fact.process(run(fact.command(devices=str(path)).get_raw_value(), tmp_path).splitlines())


def mkfs(tmp_path: Path, path: Path, size: int, fstype: str, **kwargs) -> list[str]:
    """Run ``disk.filesystem``'s own commands on an empty image of ``size`` bytes, under
    Debian 13's mke2fs.conf; the commands it gave."""
    path.write_bytes(b"")
    os.truncate(path, size)
    case = {
        "args": [str(path), fstype],
        "kwargs": kwargs,
        "facts": {"disk.BlkidFilesystems": {f"devices={path}": {}}},
    }
    commands, _host = run_operation("disk.filesystem", case)
    conf = tmp_path / "mke2fs.conf"
    conf.write_text(TRIXIE_CONF)
    for command in commands:
        run(command, tmp_path, conf)
    return commands


def planned(fleet, features, filesystems=None, root_type="ext4", frozen=True) -> GuestPlan:
    """The plan of a guest with a root LV and swap, its / grown, from these inputs (through
    the JSON they are frozen as on the KVM host)."""
    fstab = f"/dev/xvda1 / {root_type} errors=remount-ro 0 1\n/dev/xvda2 none swap sw 0 0\n"
    if filesystems is None:
        filesystems = {ROOT: {"TYPE": root_type}, SWAP: {"TYPE": "swap"}}
    inputs = PlanInputs(CONFIG, fstab, SIZES, filesystems, features)
    if frozen:
        inputs = PlanInputs.from_json(inputs.to_json())
    guest = dataclasses.replace(
        fleet.guests["db.example.net"], name="small", guest_vg="small", grow={"/": GROW}
    )
    domain = parse_xen_config(CONFIG, "small.cfg")
    volumes = source_volumes(
        guest.name,
        domain,
        parse_fstab(inputs.fstab),
        inputs.sizes,
        inputs.filesystems,
        inputs.features,
    )
    return plan_guest(guest, fleet.kvm_hosts[guest.kvm_host], domain, volumes)


def root_of(plan: GuestPlan):
    return next(volume for volume in plan.volumes if volume.mountpoint == "/")


# -- the KVM host of the issue -----------------------------------------------------------


@needs_e2fsprogs
def test_without_features_the_trixie_host_makes_what_older_guests_cannot_read(tmp_path):
    # What xen2kvm did before (and still does for plans frozen without features): the
    # host's defaults, which this test's mke2fs.conf makes Debian 13's.
    new = tmp_path / "new.img"
    mkfs(tmp_path, new, 256 * MIB, "ext4")
    assert {"orphan_file", "metadata_csum_seed"} <= set(listed(tmp_path, new)[str(new)])


# -- a source's features, kept -----------------------------------------------------------

SOURCES = {
    # Debian 11 and 12 guests, mounted (needs_recovery) while the dom0 reads them
    "bookworm": (BOOKWORM, "ext4"),
    # a Debian 13 guest keeps its own (its e2fsck and grub read them)
    "trixie": (TRIXIE, "ext4"),
    # ext3 that the guest's fstab calls ext4: no ext4 feature is added
    "ext3": (
        ["has_journal", "ext_attr", "resize_inode", "dir_index", "filetype", "sparse_super",
         "large_file"],
        "ext4",
    ),
    # grown online past its resize_inode's reserve: meta_bg instead
    "meta_bg": (
        ["has_journal", "ext_attr", "dir_index", "filetype", "meta_bg", "extent", "flex_bg",
         "sparse_super", "large_file", "huge_file", "dir_nlink", "extra_isize",
         "metadata_csum", "64bit"],
        "ext4",
    ),
}  # fmt: skip


@needs_e2fsprogs
@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_a_grown_filesystem_has_exactly_its_source_s_features(fleet, tmp_path, kind):
    made, fstype = SOURCES[kind]
    image = source(tmp_path, "root.img", made, mounted=True)
    read = listed(tmp_path, image)[str(image)]
    assert "needs_recovery" in read  # the dom0 sees a mounted filesystem
    plan = planned(fleet, {ROOT: read}, root_type=fstype)
    root = root_of(plan)
    assert root.size >= SOURCE_SIZE + GROW
    new = tmp_path / "new.img"
    mkfs(tmp_path, new, root.size, fstype, features=root.features)
    assert set(listed(tmp_path, new)[str(new)]) == set(made)


@needs_e2fsprogs
def test_an_ext3_made_with_its_features_is_taken_on_the_next_run(fleet, tmp_path):
    # blkid names it by its features: ext3, though mkfs.ext4 made it as the fstab says.
    made, _ = SOURCES["ext3"]
    image = source(tmp_path, "root.img", made)
    plan = planned(fleet, {ROOT: listed(tmp_path, image)[str(image)]})
    new = tmp_path / "new.img"
    mkfs(tmp_path, new, root_of(plan).size, "ext4", features=root_of(plan).features)
    found = blkid(tmp_path, new)
    assert found[str(new)]["TYPE"] == "ext3"
    case = {
        "args": [str(new), "ext4"],
        "kwargs": {"features": list(root_of(plan).features)},
        "facts": {"disk.BlkidFilesystems": {f"devices={new}": found}},
    }
    commands, host = run_operation("disk.filesystem", case)
    assert (commands, host.noop_description) == ([], f"{new} already holds ext3")


@needs_e2fsprogs
def test_the_inventory_s_mkfs_options_edit_the_source_s_features(fleet, tmp_path):
    root = root_of(planned(fleet, {ROOT: BOOKWORM}))
    new = tmp_path / "new.img"
    options = "-O ^metadata_csum,^64bit"  # a guest kernel older than 3.18
    mkfs(tmp_path, new, root.size, "ext4", features=root.features, options=options)
    assert set(listed(tmp_path, new)[str(new)]) == set(BOOKWORM) - {"metadata_csum", "64bit"}


# -- /boot, which has no source ----------------------------------------------------------


@needs_e2fsprogs
def test_boot_has_the_root_filesystem_s_features(fleet, tmp_path):
    image = source(tmp_path, "root.img", BOOKWORM, mounted=True)
    plan = planned(fleet, {ROOT: listed(tmp_path, image)[str(image)]})
    assert plan.boot_made_as == "ext4 with the root filesystem's features"
    boot = tmp_path / "boot.img"
    mkfs(tmp_path, boot, plan.boot_size, "ext4", features=plan.boot_features, label="boot")
    assert set(listed(tmp_path, boot)[str(boot)]) == set(BOOKWORM)


@needs_e2fsprogs
@pytest.mark.parametrize("why", ["root is xfs", "frozen without features"])
def test_boot_has_features_every_release_reads_when_the_root_s_are_unknown(fleet, tmp_path, why):
    plan = planned(fleet, {}, root_type="xfs") if why == "root is xfs" else planned(fleet, None)
    assert plan.boot_made_as == "ext4 with Debian 11's and 12's features"
    boot = tmp_path / "boot.img"
    mkfs(tmp_path, boot, plan.boot_size, "ext4", features=plan.boot_features, label="boot")
    made = set(listed(tmp_path, boot)[str(boot)])
    assert made == set(BOOT_FEATURES) == set(BOOKWORM)
    assert not made & {"orphan_file", "metadata_csum_seed"}


# -- plans frozen by an older xen2kvm ----------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"version": 1, "xen_config": %s, "fstab": %s, "sizes": %s}',
        '{"version": 2, "xen_config": %s, "fstab": %s, "sizes": %s, "filesystems": {}}',
    ],
    ids=["version 1", "version 2"],
)
def test_a_plan_frozen_without_features_keeps_mkfs_s_defaults(fleet, text):
    fstab = "/dev/xvda1 / ext4 errors=remount-ro 0 1\n/dev/xvda2 none swap sw 0 0\n"
    frozen = PlanInputs.from_json(text % (json.dumps(CONFIG), json.dumps(fstab), json.dumps(SIZES)))
    assert frozen.features is None
    plan = planned(fleet, frozen.features, frozen.filesystems or {}, frozen=False)
    root = root_of(plan)
    assert (root.source.features, root.features) == (None, None)
    assert root.made_as == "ext4 with mkfs's defaults"
    case = {
        "args": [root.device, "ext4"],
        "kwargs": {"features": root.features},
        "facts": {"disk.BlkidFilesystems": {f"devices={root.device}": {}}},
    }
    commands, _host = run_operation("disk.filesystem", case)
    assert commands == [f"mkfs.ext4 -q -F {root.device}"]


def test_plan_inputs_keep_the_features_through_json():
    inputs = PlanInputs(CONFIG, "", SIZES, {ROOT: {"TYPE": "ext4"}}, {ROOT: TRIXIE})
    assert '"version": 3' in inputs.to_json()
    assert PlanInputs.from_json(inputs.to_json()) == inputs


# -- what dumpe2fs lists, as mke2fs takes it -------------------------------------------


@needs_e2fsprogs
@pytest.mark.parametrize("name", sorted(NOT_MADE - {"journal_dev"}))
def test_mke2fs_refuses_to_make_what_is_left_out(tmp_path, name):
    # journal_dev it takes, and makes an external journal instead of a filesystem.
    done = subprocess.run(
        ["mkfs.ext4", "-q", "-F", "-O", f"none,has_journal,{name}", str(tmp_path / "x.img"), "16M"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0, f"mke2fs made {name}"


@needs_e2fsprogs
@pytest.mark.parametrize("code", sorted(set(FEATURE_BITS) - {"FEATURE_I12"}))
def test_a_feature_named_by_its_bit_is_the_one_dumpe2fs_names(tmp_path, code):
    # Set by its bit (as an older dumpe2fs prints it), named by this one. FEATURE_I12,
    # Lustre's dirdata, is left out: this dumpe2fs refuses to open a filesystem with it.
    image = source(tmp_path, "x.img", ["has_journal", "ext_attr", "filetype", "extent"])
    run(f"debugfs -w -R 'feature {code}' {image}", tmp_path)
    assert feature_name(code) in listed(tmp_path, image)[str(image)]


# -- the new features, in the pure core ------------------------------------------------


def test_states_are_left_out_and_names_an_older_dumpe2fs_did_not_know_are_given():
    # Debian 11's dumpe2fs (1.46.2) on a Debian 13 guest's mounted root.
    found = ["has_journal", "FEATURE_C12", "needs_recovery", "extent", "FEATURE_R16"]
    assert mkfs_features(found, 8 << 30) == ("has_journal", "orphan_file", "extent")


def test_past_16_tib_a_filesystem_gets_64bit_and_no_resize_inode():
    found = ["has_journal", "resize_inode", "extent", "flex_bg"]
    assert mkfs_features(found, BLOCKS_32BIT_LIMIT - 4096) == tuple(found)
    assert mkfs_features(found, BLOCKS_32BIT_LIMIT) == ("has_journal", "extent", "flex_bg", "64bit")


def test_past_16_tib_a_filesystem_without_extents_is_refused_in_the_plan(fleet):
    guest = dataclasses.replace(
        fleet.guests["db.example.net"], name="small", guest_vg="small", grow={"/": 17 << 40}
    )
    domain = parse_xen_config(CONFIG, "small.cfg")
    fstab = parse_fstab("/dev/xvda1 / ext3 defaults 0 1\n/dev/xvda2 none swap sw 0 0\n")
    ext3 = ["has_journal", "ext_attr", "resize_inode", "dir_index", "filetype", "sparse_super"]
    volumes = source_volumes(guest.name, domain, fstab, SIZES, None, {ROOT: ext3})
    with pytest.raises(PlanError, match=r"grow\./: .*without extents holds at most 16 TiB"):
        plan_guest(guest, fleet.kvm_hosts[guest.kvm_host], domain, volumes)


def test_the_plan_says_how_each_filesystem_is_made(fleet):
    text = planned(fleet, {ROOT: BOOKWORM}).summary()
    assert "p1 /boot 512M, ext4 with the root filesystem's features" in text
    assert "/dev/mapper/small-root / 1G (from xvda1 64M), ext4 with the source's features" in text
    assert "/dev/mapper/small-swap swap 16M (from xvda2 16M), swap" in text


def asked(tmp_path: Path, features: list[str], fstype: str = "ext4") -> dict:
    """What the ``Mke2fsFeatures`` fact reads from this machine's mke2fs, by its command."""
    fact = Mke2fsFeatures()
    command = fact.command(features=features, fstype=fstype).get_raw_value()
    done = subprocess.run(["sh", "-c", command], cwd=tmp_path, capture_output=True, text=True)
    return fact.process(done.stdout.splitlines())


@needs_e2fsprogs
def test_the_plan_asks_mke2fs_and_names_the_features_it_does_not_know(tmp_path):
    """The plan's check on a destination (``preflight.ext_features``) with this machine's
    real mke2fs: the sets a source of Debian 11, 12 or 13 has are made; one with a feature
    newer than this e2fsprogs (as orphan_file is to Debian 11's) is refused in the plan,
    naming it, and nothing is made (``mke2fs -n``, on /dev/null)."""
    future = [*TRIXIE, "future_feature"]
    facts = {
        f"features={features!r}, fstype={fstype}": asked(tmp_path, features, fstype)
        for fstype, features in (("ext4", BOOKWORM), ("ext4", TRIXIE), ("ext3", future))
    }
    assert [found["accepts"] for found in facts.values()] == [True, True, False]
    assert list(tmp_path.iterdir()) == [], "mke2fs -n makes nothing"
    filesystems = {"web1 /": ["ext4", BOOKWORM], "mail1 /": ["ext4", TRIXIE]}
    _commands, host = run_operation(
        "preflight.ext_features",
        {"kwargs": {"filesystems": filesystems}, "facts": {"disk.Mke2fsFeatures": facts}},
    )
    assert host.noop_description == "mke2fs makes the 2 ext filesystems (2 feature sets)"
    filesystems["mail1 /srv"] = ["ext3", future]
    with pytest.raises(OperationError) as refused:
        run_operation(
            "preflight.ext_features",
            {"kwargs": {"filesystems": filesystems}, "facts": {"disk.Mke2fsFeatures": facts}},
        )
    version = ".".join(map(str, _mke2fs_version()))
    assert re.fullmatch(
        f"testhost: mail1 /srv: its ext3 is made with its source's features, and this "
        f"host's e2fsprogs {re.escape(version)}[.0-9]* does not know future_feature: move it "
        "to a host with an e2fsprogs as new as its source's \\(or install one here\\)",
        str(refused.value),
    ), str(refused.value)
