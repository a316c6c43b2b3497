"""tasks/plan.py: what each host of a run is checked for, by its roles in the run's moves
(run as deploy code with the moves and the checks replaced by recorders)."""

from __future__ import annotations

import runpy
from pathlib import Path
from types import SimpleNamespace

import pytest

from tasks.destinations.dom0 import Dom0
from tasks.destinations.kvm import Kvm
from xen2kvm import requirements

PLAN = Path(__file__).resolve().parents[2] / "tasks" / "plan.py"


def move(kind: str, migrated: bool = False, fstypes=("ext4",), vg=None):
    volumes = [SimpleNamespace(fstype=fstype) for fstype in fstypes]
    return SimpleNamespace(
        migrated=migrated,
        to=Kvm() if kind == "kvm" else Dom0(),
        need_plan=lambda: SimpleNamespace(volumes=volumes),
        volumes=volumes,
        dest_spec=SimpleNamespace(vg=vg),
        guest=SimpleNamespace(
            name="g1",
            xen_config="/etc/xen/g1.cfg",
            arch="amd64",
            boot_time=90,
            downtime_budget=None,
            integrity_check="checksum",
        ),
        state_dir="/var/lib/xen2kvm",
        projection=lambda: "no projected downtime yet (no warm copy)",
        source=SimpleNamespace(name="xen1"),
        xen_domain="g1",
        source_devices=["/dev/xenvg/g1-root"],
    )


def checked(monkeypatch, dest=(), source=(), guest=()) -> dict | None:
    """The ``needs`` plan.py checks on a host with these moves (None: no check)."""
    found = {"dest": list(dest), "source": list(source), "guest": list(guest)}
    calls: list[dict] = []
    monkeypatch.setattr("tasks.move.moves", lambda where, need_plan=True: found[where])
    monkeypatch.setattr("tasks.steps.moves", lambda where, need_plan=True: found[where])
    monkeypatch.setattr("tasks.steps.refuse_missing_commands", lambda: None)
    monkeypatch.setattr("operations.preflight.commands", lambda name, needs: calls.append(needs))
    monkeypatch.setattr("operations.preflight.xen_config", lambda **kwargs: None)
    monkeypatch.setattr("operations.preflight.source_unused", lambda **kwargs: None)
    monkeypatch.setattr("operations.preflight.guest", lambda **kwargs: None)
    monkeypatch.setattr("operations.preflight.downtime", lambda **kwargs: None)
    for kind in (Kvm, Dom0):  # what the destination checks itself is not this test's
        monkeypatch.setattr(kind, "check", lambda self, moves: None)
    runpy.run_path(str(PLAN))
    assert len(calls) <= 1
    return calls[0] if calls else None


def test_a_kvm_host_with_an_xfs_guest_needs_mkfs_xfs(monkeypatch):
    needs = checked(monkeypatch, dest=[move("kvm", fstypes=("xfs", "swap"))])
    assert needs == requirements.needs([requirements.KVM_HOST], ["ext4", "xfs", "swap"])
    assert "mkfs.xfs" in needs


def test_a_dom0_both_source_and_rehome_destination_needs_the_union(monkeypatch):
    needs = checked(monkeypatch, dest=[move("dom0", vg="vg0")], source=[move("kvm")])
    assert needs is not None
    assert {"lvcreate", "blockdev", "ssh-keygen", "xl"} <= set(needs)


def test_a_rehome_dom0_without_vg_needs_no_lvcreate(monkeypatch):
    needs = checked(monkeypatch, dest=[move("dom0")])
    assert needs is not None
    assert "lvcreate" not in needs


@pytest.mark.parametrize(("kind", "arping"), [("kvm", False), ("dom0", True)])
def test_a_guest_needs_arping_only_when_nothing_installs_it(monkeypatch, kind, arping):
    needs = checked(monkeypatch, guest=[move(kind)])
    assert needs is not None
    assert ("arping" in needs) is arping


def test_complete_moves_are_not_checked(monkeypatch):
    done = move("kvm", migrated=True)
    assert checked(monkeypatch, dest=[done], source=[done], guest=[done]) is None


class FakeHost:
    """A host of the run: its name and what its CommandsMissing fact says."""

    def __init__(self, name: str, missing: list[str]):
        self.name, self.missing = name, missing

    def get_fact(self, fact, names):
        return [name for name in names if name in self.missing]


def test_one_refusal_names_every_host_s_missing_commands(monkeypatch):
    from pyinfra.api import OperationError
    from pyinfra.context import ctx_host

    from tasks import steps

    hosts = [
        FakeHost("web1", ["rsync"]),
        FakeHost("kvm1", ["kpartx", "rsync"]),
        FakeHost("xen1", []),
    ]
    wants = {
        "web1": {"rsync": "apt-get install rsync", "apt-get": "apt-get install apt"},
        "kvm1": {"kpartx": "apt-get install kpartx", "rsync": "apt-get install rsync"},
        "xen1": {"rsync": "apt-get install rsync"},
    }
    state = SimpleNamespace(inventory=SimpleNamespace(get_active_hosts=lambda: hosts))
    monkeypatch.setattr(steps, "host", SimpleNamespace(state=state))
    monkeypatch.setattr(steps, "needs", lambda: wants[ctx_host.get().name])
    with pytest.raises(OperationError) as refused:
        steps.refuse_missing_commands()
    assert str(refused.value).splitlines() == [
        "kvm1: kpartx is missing: apt-get install kpartx",
        "kvm1: rsync is missing: apt-get install rsync",
        "web1: rsync is missing: apt-get install rsync",
    ]
    # The next host of the same run gets the same answer, without reading again.
    hosts.clear()
    with pytest.raises(OperationError):
        steps.refuse_missing_commands()
