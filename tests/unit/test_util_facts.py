"""operations.util.facts.fact: one read per host and arguments while pyinfra plans, a
fresh read each time while it executes, and a copy of its own for each caller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gevent
import pytest
from pyinfra.api import Inventory, State
from pyinfra.api.state import StateStage
from pyinfra.facts.files import FileContents

from facts.lvm import LvmVolumeGroups
from operations.util.facts import fact


class Counting:
    """A host whose facts answer a new list on each read, counting the reads."""

    def __init__(self, name: str, state: object) -> None:
        self.name = name
        self.state = state
        self.reads: list[tuple[str, dict[str, Any]]] = []

    def get_fact(self, cls: type, **kwargs: Any) -> list[str]:
        self.reads.append((cls.__name__, kwargs))
        gevent.sleep(0.01)  # as a command over SSH would: the other greenlets run meanwhile
        return [f"read {len(self.reads)}"]


class Failing(Counting):
    def get_fact(self, cls: type, **kwargs: Any) -> list[str]:
        super().get_fact(cls, **kwargs)
        raise OSError("the connection dropped")


@pytest.fixture
def state() -> State:
    return State(inventory=Inventory((["kvm1", "xen1"], {})))


def test_while_planning_each_fact_and_arguments_is_read_once(state):
    state.set_stage(StateStage.Prepare)
    kvm1 = Counting("kvm1", state)
    first = fact(kvm1, FileContents, path="/etc/fstab")
    assert fact(kvm1, FileContents, path="/etc/fstab") == first == ["read 1"]
    assert fact(kvm1, FileContents, path="/etc/hosts") == ["read 2"]
    assert fact(kvm1, LvmVolumeGroups) == ["read 3"]
    assert fact(kvm1, LvmVolumeGroups) == ["read 3"]
    assert [name for name, _ in kvm1.reads] == ["FileContents", "FileContents", "LvmVolumeGroups"]


def test_hosts_planned_side_by_side_share_the_read_in_flight(state):
    """pyinfra plans each host in a greenlet; four asking kvm1 for a guest's plan file at
    once (as wave 1's hosts do) run one command, and each gets its own copy."""
    state.set_stage(StateStage.Prepare)
    kvm1 = Counting("kvm1", state)
    readers = [gevent.spawn(fact, kvm1, FileContents, path="/plans/web1.json") for _ in range(4)]
    gevent.joinall(readers, raise_error=True)
    answers = [reader.value for reader in readers]
    assert answers == [["read 1"]] * 4 and len({id(answer) for answer in answers}) == 4
    assert len(kvm1.reads) == 1


def test_a_failed_read_fails_those_waiting_for_it_and_is_not_kept(state):
    state.set_stage(StateStage.Prepare)
    kvm1 = Failing("kvm1", state)
    readers = [gevent.spawn(fact, kvm1, LvmVolumeGroups) for _ in range(3)]
    gevent.joinall(readers)
    assert [type(reader.exception) for reader in readers] == [OSError] * 3
    assert len(kvm1.reads) == 1
    with pytest.raises(OSError, match="dropped"):
        fact(kvm1, LvmVolumeGroups)
    assert len(kvm1.reads) == 2


def test_hosts_are_apart(state):
    state.set_stage(StateStage.Prepare)
    kvm1, xen1 = Counting("kvm1", state), Counting("xen1", state)
    assert fact(kvm1, LvmVolumeGroups) == ["read 1"]
    assert fact(xen1, LvmVolumeGroups) == ["read 1"]
    assert len(kvm1.reads) == len(xen1.reads) == 1


def test_each_caller_gets_a_copy_of_its_own(state):
    state.set_stage(StateStage.Prepare)
    kvm1 = Counting("kvm1", state)
    fact(kvm1, LvmVolumeGroups).append("changed by a caller")
    assert fact(kvm1, LvmVolumeGroups) == ["read 1"]


def test_while_executing_every_read_is_fresh(state):
    state.set_stage(StateStage.Prepare)
    kvm1 = Counting("kvm1", state)
    assert fact(kvm1, LvmVolumeGroups) == ["read 1"]
    state.set_stage(StateStage.Execute)
    assert fact(kvm1, LvmVolumeGroups) == ["read 2"]
    assert fact(kvm1, LvmVolumeGroups) == ["read 3"]


def test_a_new_plan_reads_again():
    for _ in range(2):
        state = State(inventory=Inventory((["kvm1"], {})))
        state.set_stage(StateStage.Prepare)
        kvm1 = Counting("kvm1", state)
        assert fact(kvm1, LvmVolumeGroups) == ["read 1"]


def test_a_host_without_a_pyinfra_state_reads_each_time():
    kvm1 = Counting("kvm1", None)
    assert [fact(kvm1, LvmVolumeGroups) for _ in range(2)] == [["read 1"], ["read 2"]]


def test_operations_and_tasks_read_their_facts_through_it():
    """A direct ``get_fact`` would run its command again for each operation that plans."""
    root = Path(__file__).resolve().parents[2]
    direct = [
        f"{path.relative_to(root)}:{number}"
        for folder in ("operations", "tasks")
        for path in sorted((root / folder).rglob("*.py"))
        if path != root / "operations" / "util" / "facts.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if ".get_fact(" in line
    ]
    assert direct == []
