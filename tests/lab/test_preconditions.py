"""On the lab: a plan run refuses a wave whose hosts lack a command the move needs, naming
the host, the command and its Debian fix, and changes nothing (``preflight.commands``,
``xen2kvm.requirements``).

Each case moves one binary aside on one host, runs one plan over wave 1 and puts the binary
back (in a ``finally``): the lab stays as ``lab up`` left it, no pristine reset needed.
Wave 1 must not be migrated yet (the plan skips complete moves): otherwise the case skips.
"""

from __future__ import annotations

import json
import shlex

import pytest

from tests.lab.conftest import Ssh
from tests.lab.test_migration import pyinfra, text
from xen2kvm.journal import CUTOVER_COMPLETE, done
from xen2kvm.requirements import RRSYNC_FIX

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ASIDE = ".x2k-aside"

# (host, what goes missing, the line the plan must print)
CASES = [
    ("kvm1", "kpartx", "kvm1: kpartx is missing: apt-get install kpartx"),
    ("kvm1", "rsync", "kvm1: rsync is missing: apt-get install rsync"),
    ("xen1", "rsync", "xen1: rsync is missing: apt-get install rsync"),
    ("web1", "/usr/bin/rrsync", f"web1: /usr/bin/rrsync is missing: {RRSYNC_FIX}"),
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


@pytest.fixture
def wave1_not_migrated(ssh: Ssh) -> None:
    for guest in ("web1", "legacy1"):
        found = ssh("kvm1", f"cat /var/lib/xen2kvm/journal/{guest}.jsonl 2>/dev/null || true")
        records = [json.loads(line) for line in found.stdout.splitlines() if line.strip()]
        if done(records, CUTOVER_COMPLETE):
            pytest.skip(f"{guest} is migrated: the plan checks only moves not yet complete")


@pytest.mark.parametrize(("host", "name", "line"), CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_plan_refuses_a_missing_command(ssh: Ssh, wave1_not_migrated, host, name, line):
    path = located(ssh, host, name)
    before = ssh("kvm1", STATE)
    moved = ssh(host, f"mv {shlex.quote(path)} {shlex.quote(path + ASIDE)}")
    assert moved.returncode == 0, moved.stderr
    try:
        result = pyinfra("--limit", "wave1", "--data", "phase=plan", timeout=600)
    finally:
        restored = ssh(host, f"mv {shlex.quote(path + ASIDE)} {shlex.quote(path)}")
        assert restored.returncode == 0, f"{host}: {path} NOT restored: {restored.stderr}"
    output = text(result)
    assert result.returncode != 0, output[-3000:]
    assert line in output, output[-3000:]
    assert ssh("kvm1", STATE).stdout == before.stdout
