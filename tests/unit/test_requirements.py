"""xen2kvm.requirements: what each role needs, as the plan checks it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from facts.commands import NAME
from xen2kvm import requirements
from xen2kvm.requirements import GUEST, KVM_HOST, MKFS, NEEDS, REHOME, REHOME_GUEST, SOURCE

ROWS = [need for row in NEEDS.values() for need in row] + list(MKFS.values())


@pytest.mark.parametrize("need", ROWS, ids=[f"{n.name}" for n in ROWS])
def test_each_name_is_one_shell_word(need):
    assert NAME.fullmatch(need.name)


@pytest.mark.parametrize("need", ROWS, ids=[f"{n.name}" for n in ROWS])
def test_each_package_is_a_debian_package_name(need):
    assert re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", need.package)
    assert need.remedy.startswith("apt-get install ")
    assert need.why


def test_kvm_host_needs_kpartx_with_its_package():
    assert requirements.needs([KVM_HOST])["kpartx"] == "apt-get install kpartx"
    assert requirements.needs([KVM_HOST])["sfdisk"] == "apt-get install fdisk"


def test_mkfs_xfs_only_when_a_filesystem_is_xfs():
    assert "mkfs.xfs" not in requirements.needs([KVM_HOST], ["ext4", "swap"])
    assert requirements.needs([KVM_HOST], ["ext4", "xfs"])["mkfs.xfs"] == "apt-get install xfsprogs"


def test_an_unknown_filesystem_is_left_to_disk_filesystem():
    assert requirements.needs([REHOME], ["btrfs"]) == requirements.needs([REHOME])


def test_a_rehome_dom0_needs_lvcreate_only_with_a_vg():
    assert "lvcreate" not in requirements.needs([REHOME])
    assert "lvcreate" in requirements.needs([REHOME], lvm=True)


def test_a_dom0_both_source_and_destination_needs_the_union_once():
    both = requirements.needs([SOURCE, REHOME])
    assert set(both) == set(requirements.needs([SOURCE])) | set(requirements.needs([REHOME]))
    assert next(iter(both)) == "xl"


@pytest.mark.parametrize("role", [SOURCE, GUEST, REHOME_GUEST])
def test_what_a_source_serves_the_key_with_is_rsync_alone(role):
    # rsync's own daemon over SSH: no rrsync (Debian 12's rsync only), no Python.
    served = [need for need in NEEDS[role] if "migration key" in need.why]
    assert [(need.name, need.remedy) for need in served] == [("rsync", "apt-get install rsync")]
    assert not {"python3", "/usr/bin/rrsync"} & set(requirements.needs([role]))


def test_arping_is_required_only_of_rehomed_guests():
    # A guest moving to KVM gets arping from its prepare (tasks/destinations/kvm.py).
    assert "arping" not in requirements.needs([GUEST])
    assert requirements.needs([REHOME_GUEST])["arping"] == "apt-get install arping"


def test_the_table_has_every_row_and_the_lvm_of_a_rehome_with_a_vg():
    rows = requirements.table()
    assert [(name, package) for _role, name, package, _why in rows[: len(ROWS)]] == [
        (need.name, need.package) for need in ROWS
    ]
    assert {name for role, name, _p, _w in rows[len(ROWS) :]} == {"lvcreate", "lvs", "vgs"}


def test_the_readme_table_is_the_generated_one():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    begin = readme.index("<!-- requirements:")
    block = readme[readme.index("\n", begin) + 1 : readme.index("<!-- /requirements -->")]
    assert block == requirements.markdown(), (
        "README.md's table of what each host needs is stale: paste the output of "
        "python -m xen2kvm.requirements between its markers"
    )
