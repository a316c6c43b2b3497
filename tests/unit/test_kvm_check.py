"""tasks.destinations.kvm: what the plan's check of a KVM host is given about the guest VGs
the run will map there (run with the check replaced by a recorder)."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

from tasks.destinations.kvm import Kvm
from xen2kvm.devices import mapping_path
from xen2kvm.filesystems import EXT


def _move(fleet, plan, migrated=False):
    return SimpleNamespace(
        guest=SimpleNamespace(name=plan.guest),
        migrated=migrated,
        need_plan=lambda: plan,
        dest_spec=fleet.kvm_hosts["kvm-a.example.net"],
    )


def _checks(monkeypatch, moves) -> dict[str, list[dict]]:
    calls: dict[str, list[dict]] = {"kvm_host": [], "ext_features": []}
    for check, made in calls.items():
        monkeypatch.setattr(
            f"operations.preflight.{check}", lambda made=made, **kw: made.append(kw)
        )
    Kvm().check(moves)
    return calls


def _checked(monkeypatch, moves) -> dict:
    calls = _checks(monkeypatch, moves)["kvm_host"]
    assert len(calls) == 1
    return calls[0]


def test_each_guest_vg_is_checked_against_the_pv_its_build_makes(monkeypatch, fleet, www_plan):
    # build() makes the guest VG on partition 2 of the disk as kpartx maps it: a VG of
    # that name on that PV is the guest's own, from an earlier run.
    checked = _checked(monkeypatch, [_move(fleet, www_plan)])
    assert checked["guest_vgs"] == {
        "www.example.net": ("www", mapping_path(www_plan.disk_path, 2)),
    }
    assert checked["guest_vgs"]["www.example.net"][1] == "/dev/mapper/vg_guests-www.example.netp2"


def test_a_complete_move_and_a_plain_layout_map_no_guest_vg(monkeypatch, fleet, www_plan):
    plain = dataclasses.replace(
        www_plan, guest="plain.example.net", host_lv="plain", layout="plain", guest_vg=None
    )
    moves = [_move(fleet, www_plan, migrated=True), _move(fleet, plain)]
    checked = _checked(monkeypatch, moves)
    assert checked["guest_vgs"] == {}
    assert set(checked["planned_lvs"]) == {www_plan.host_lv, plain.host_lv}


def test_each_new_ext_filesystem_s_features_are_asked_of_the_host_s_mke2fs(
    monkeypatch, fleet, www_plan
):
    """/boot's and each ext volume's, as build() makes them; a complete move's none."""
    volumes = [
        dataclasses.replace(v, features=("has_journal", "ext_attr")) if v.fstype in EXT else v
        for v in www_plan.volumes
    ]
    plan = dataclasses.replace(www_plan, volumes=volumes)
    done = dataclasses.replace(www_plan, guest="done.example.net")
    calls = _checks(monkeypatch, [_move(fleet, plan), _move(fleet, done, migrated=True)])
    (asked,) = calls["ext_features"]
    ext = [v for v in volumes if v.fstype in EXT]
    assert [v.fstype for v in ext] == ["ext3"] * 4, "the sample's /, /var, /srv and /home"
    assert asked["filesystems"] == {
        "www.example.net /boot": ("ext4", list(plan.boot_features)),
        **{f"www.example.net {v.mountpoint}": ("ext3", ["has_journal", "ext_attr"]) for v in ext},
    }
