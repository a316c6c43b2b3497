"""On the lab: a plan run refuses a wave whose hosts lack commands the move needs, naming
each host, each command and its Debian fix, and changes nothing (``preflight.commands``,
``xen2kvm.requirements``).

One plan run over wave 1 with a binary moved aside on each of three hosts (two on the KVM
host and on the dom0); every binary is put back in a ``finally``, so the lab stays as
``lab up`` left it.
A second plan run finds the KVM host's volume group filled by another LV and refuses the
wave for its size. Wave 1 must not be migrated (the plan checks only moves not yet
complete): the lab is reset first when it is.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator

import pytest

from tests.lab.conftest import Ssh
from tests.lab.runs import pyinfra, text, untouched

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ASIDE = ".x2k-aside"

# (host, what goes missing, the line the plan must print)
CASES = [
    ("kvm1", "kpartx", "kvm1: kpartx is missing: apt-get install kpartx"),
    ("kvm1", "rsync", "kvm1: rsync is missing: apt-get install rsync"),
    ("xen1", "rsync", "xen1: rsync is missing: apt-get install rsync"),
    ("xen1", "dumpe2fs", "xen1: dumpe2fs is missing: apt-get install e2fsprogs"),
    ("web1", "rsync", "web1: rsync is missing: apt-get install rsync"),
]

# What a plan run must leave as it found it, on the KVM host.
STATE = "ls -a /var/lib/xen2kvm 2>/dev/null; lvs --noheadings -o lv_name,lv_size vg0"


def located(ssh: Ssh, host: str, name: str) -> str:
    """The file a command name resolves to on the host (an absolute path stays itself)."""
    if name.startswith("/"):
        return name
    result = ssh(host, f"command -v {shlex.quote(name)}")
    assert result.returncode == 0, f"{host}: no {name} to move aside: {result.stderr}"
    return result.stdout.strip()


@pytest.fixture(scope="module")
def missing(lab, ssh: Ssh) -> Iterator[str]:
    """Every case's binary moved aside for one plan run over wave 1; its output."""
    untouched(ssh, {"web1": "kvm1", "legacy1": "kvm1"})
    aside = [(host, located(ssh, host, name)) for host, name, _ in CASES]
    before = ssh("kvm1", STATE).stdout
    moved = []
    try:
        for host, path in aside:
            result = ssh(host, f"mv {shlex.quote(path)} {shlex.quote(path + ASIDE)}")
            assert result.returncode == 0, f"{host}: {result.stderr}"
            moved.append((host, path))
        result = pyinfra("--limit", "wave1", "--data", "phase=plan", timeout=600)
    finally:
        for host, path in moved:
            back = ssh(host, f"mv {shlex.quote(path + ASIDE)} {shlex.quote(path)}")
            assert back.returncode == 0, f"{host}: {path} NOT restored: {back.stderr}"
    assert result.returncode != 0, text(result)[-3000:]
    assert ssh("kvm1", STATE).stdout == before, "the plan run changed the KVM host"
    yield text(result)


@pytest.mark.parametrize(("host", "name", "line"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_plan_names_each_missing_command(missing: str, host: str, name: str, line: str) -> None:
    assert line in missing, missing[-3000:]


FILLER = "vg0/x2k-filler"


def test_plan_refuses_a_volume_group_too_small(lab, ssh: Ssh) -> None:
    """The KVM host's VG filled by another LV: the plan names the VG, its free space and
    what the wave needs, and changes nothing."""
    untouched(ssh, {"web1": "kvm1", "legacy1": "kvm1"})
    made = ssh("kvm1", "lvcreate -q -y -Wn -Zn -l 100%FREE -n x2k-filler vg0")
    assert made.returncode == 0, made.stderr
    try:
        before = ssh("kvm1", STATE).stdout
        result = pyinfra("--limit", "wave1", "--data", "phase=plan", timeout=600)
        after = ssh("kvm1", STATE).stdout
    finally:
        removed = ssh("kvm1", f"lvremove -q -y {FILLER}")
        assert removed.returncode == 0, f"kvm1: {FILLER} NOT removed: {removed.stderr}"
    output = text(result)
    assert result.returncode != 0, output[-3000:]
    assert "kvm1: volume group vg0 has 0B free, the wave needs " in output, output[-3000:]
    assert "grow vg0 (vgextend) or move fewer of its guests in this wave" in output
    assert after == before, "the plan run changed the KVM host"
