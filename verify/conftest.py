"""The verify suite's hosts, options and shared state: read from the deploy's own inventory.

    pytest verify/ --inventory inventory/prod.py --wave 1
    pytest verify/ --inventory inventory/prod.py --guest web1 --guest db2

Hosts, addresses, SSH users, keys and known_hosts come from the same fleet file pyinfra
uses (the ``.py`` inventory or its ``.yml``); nothing else lists them. Each guest's
"before" is the baseline its cutover filed beside the journal on the KVM host; its
"after" is the same script's picture taken now. The suite only reads, except for one
tagged log line and one tagged mail per guest.
"""

from __future__ import annotations

import json
import os
import shlex
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
import testinfra

from xen2kvm import fleet_access
from xen2kvm.baseline import GUEST_PATH, SCRIPT_NAME, Snapshot
from xen2kvm.errors import Xen2KvmError
from xen2kvm.fleet_access import Inventory, ssh_config_text
from xen2kvm.inventory import Fleet, Guest, KvmHost
from xen2kvm.journal import CUTOVER_COMPLETE, REHOME_COMPLETE, done, summarise
from xen2kvm.paths import DOM0_STATE

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = (ROOT / "files" / SCRIPT_NAME).read_text()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("xen2kvm", "xen2kvm verify")
    group.addoption(
        "--inventory",
        default=os.environ.get("XEN2KVM_INVENTORY", "inventory/prod.py"),
        help="the deploy's inventory: inventory/NAME.py or its .yml (env XEN2KVM_INVENTORY)",
    )
    group.addoption(
        "--wave", action="append", type=int, default=[], help="check this wave (repeatable)"
    )
    group.addoption("--guest", action="append", default=[], help="check this guest (repeatable)")
    group.addoption(
        "--log-gap-tolerance",
        type=float,
        default=120.0,
        help="seconds the syslog gap may exceed the measured downtime (default 120)",
    )
    group.addoption(
        "--ignore-listener",
        action="append",
        default=[],
        help="PROTO:PORT not compared with the baseline, e.g. udp:123 (repeatable)",
    )


# --- the inventory ------------------------------------------------------------------


def load_inventory(path: str) -> Inventory:
    """Hosts and their SSH settings as pyinfra would see them (``xen2kvm.fleet_access``)."""
    try:
        return fleet_access.load_inventory(path)
    except Xen2KvmError as exc:
        raise pytest.UsageError(str(exc)) from None


def selected_guests(config: pytest.Config) -> list[Guest]:
    fleet: Fleet = config.x2k_inventory.fleet  # type: ignore[attr-defined]
    waves, names = config.getoption("wave"), config.getoption("guest")
    unknown = [name for name in names if name not in fleet.guests]
    if unknown:
        raise pytest.UsageError(f"--guest {', '.join(unknown)}: not in {fleet.source}")
    missing = [wave for wave in waves if wave not in fleet.waves]
    if missing:
        raise pytest.UsageError(f"--wave {missing[0]}: no such wave (waves: {fleet.waves})")
    return [
        guest
        for guest in fleet.guests.values()
        if (not waves or guest.wave in waves) and (not names or guest.name in names)
    ]


def pytest_configure(config: pytest.Config) -> None:
    config.x2k_inventory = load_inventory(config.getoption("inventory"))  # type: ignore[attr-defined]
    config.x2k_guests = selected_guests(config)  # type: ignore[attr-defined]


def _guests(config: pytest.Config) -> list[Guest]:
    return getattr(config, "x2k_guests", [])


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each check runs per guest (``target``), per address (``guest_ip``) or per service
    (``guest_service``) of the selected guests, from the inventory's data."""
    if "target" not in metafunc.fixturenames:
        return
    guests = _guests(metafunc.config)
    if "guest_ip" in metafunc.fixturenames:
        pairs = [(g.name, ip) for g in guests for ip in g.ips]
        metafunc.parametrize(
            ("target", "guest_ip"),
            pairs,
            ids=[f"{g}-{ip}" for g, ip in pairs],
            indirect=["target"],
        )
    elif "guest_service" in metafunc.fixturenames:
        pairs = [(g.name, s) for g in guests for s in g.services if s != g.mta]
        metafunc.parametrize(
            ("target", "guest_service"),
            pairs,
            ids=[f"{g}-{s}" for g, s in pairs],
            indirect=["target"],
        )
    else:
        names = [g.name for g in guests]
        metafunc.parametrize("target", names, ids=names, indirect=True)


@pytest.fixture(scope="session")
def inventory(request: pytest.FixtureRequest) -> Inventory:
    return request.config.x2k_inventory  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def ssh_config(inventory: Inventory) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="x2k-verify-") as tmp:
        path = Path(tmp) / "ssh_config"
        path.write_text(ssh_config_text(inventory.host_data, tmp))
        yield str(path)


# --- one guest's state --------------------------------------------------------------


@dataclass
class Target:
    """A migrated guest: where it runs, what it was before, what it is now."""

    spec: Guest
    host: Any  # testinfra Host, the guest itself
    kvm: KvmHost | None
    kvm_host: Any  # testinfra Host of its KVM host (journal, baseline, libvirt)
    journal: list[dict] = field(default_factory=list)
    baseline: Snapshot | None = None
    baseline_source: str = ""
    journal_at: str = ""  # the host that keeps its journal
    dom0_arch: str | None = None  # a rehomed guest's new dom0: its kernel's machine
    complete_step: str = CUTOVER_COMPLETE
    _now: Snapshot | None = None
    _domain: ElementTree.Element | None = None

    @property
    def now(self) -> Snapshot:
        """The guest as it is (taken once per session: the checks compare with it)."""
        if self._now is None:
            result = self.host.run("sh -c %s x2k-baseline --no-mark", SCRIPT)
            self._now = Snapshot.from_text(result.stdout)
        return self._now

    @property
    def downtime(self) -> float | None:
        """From the Xen stop to SSH answering again, as the journal measured it (the
        current attempt: a rollback starts a new one)."""
        return summarise(self.journal).downtime

    @property
    def domain(self) -> ElementTree.Element:
        """The libvirt domain as defined on the KVM host."""
        if self._domain is None:
            uri = shlex.quote(self.kvm.libvirt_uri) if self.kvm else "''"
            result = self.kvm_host.run(f"virsh -c {uri} dumpxml %s", self.spec.domain_name)
            if result.rc != 0:
                pytest.fail(f"{self.spec.name}: virsh dumpxml failed: {result.stderr.strip()}")
            self._domain = ElementTree.fromstring(result.stdout)  # noqa: S314 (virsh on our host)
        return self._domain

    def require_baseline(self) -> Snapshot:
        if self.baseline is None:
            pytest.fail(
                f"{self.spec.name}: no pre-cutover baseline ({self.baseline_source}); it is "
                "taken by the cutover of xen2kvm, so this guest was not cut over by it"
            )
        return self.baseline

    def recorded(self, name: str) -> Any:
        """The baseline's ``Snapshot.<name>``; the check skips when the baseline was taken
        by an older x2k-baseline that did not record it."""
        value = getattr(self.require_baseline(), name)
        if value is None:
            pytest.skip(
                f"{self.spec.name}: the baseline ({self.baseline_source}) has no {name}: "
                "it was taken by an older x2k-baseline"
            )
        return value

    def excerpt(self, command: str, lines: int = 15) -> str:
        """A few lines of a log or a command's output for a failure message."""
        result = self.host.run(f"{command} 2>&1 | tail -n {lines}")
        return "\n    ".join(["", *result.stdout.rstrip().splitlines()])


_TARGETS: dict[str, Target] = {}


def _load_target(inventory: Inventory, ssh_config: str, name: str) -> Target:
    spec = inventory.fleet.guests[name]

    def connect(host_name: str) -> Any:
        return testinfra.get_host(f"ssh://{host_name}", ssh_config=ssh_config, controlpersist=120)

    host = connect(name)
    kvm = inventory.fleet.kvm_hosts.get(spec.kvm_host) if spec.kvm_host else None
    kvm_host = connect(kvm.name) if kvm else None
    target = Target(spec=spec, host=host, kvm=kvm, kvm_host=kvm_host)
    # The journal: on the KVM host, or on the new dom0 of a guest rehomed on Xen.
    if kvm is not None:
        keeper, state_dir = kvm_host, kvm.state_dir
        target.journal_at, target.complete_step = kvm.name, CUTOVER_COMPLETE
    else:
        keeper, state_dir = connect(spec.rehome_to), DOM0_STATE
        target.journal_at, target.complete_step = spec.rehome_to, REHOME_COMPLETE
        target.dom0_arch = inventory.fleet.xen_hosts[spec.rehome_to].arch
    journal = keeper.run("cat %s", f"{state_dir}/journal/{name}.jsonl")
    if journal.rc == 0:
        target.journal = [json.loads(line) for line in journal.stdout.splitlines() if line]
    if kvm is not None:
        kept = f"{kvm.state_dir}/baseline/{name}"
        result = kvm_host.run("cat %s", kept)
        target.baseline_source = f"{kvm.name}:{kept}"
    else:  # the guest's own copy, as its cutover left it
        result = host.run("cat %s", GUEST_PATH)
        target.baseline_source = f"{name}:{GUEST_PATH}"
    if result.rc == 0 and result.stdout.strip():
        target.baseline = Snapshot.from_text(result.stdout)
    return target


@pytest.fixture
def target(request: pytest.FixtureRequest, inventory: Inventory, ssh_config: str) -> Target:
    """The guest under test (its name is the parameter)."""
    name = request.param
    if name not in _TARGETS:
        _TARGETS[name] = _load_target(inventory, ssh_config, name)
    found = _TARGETS[name]
    if not done(found.journal, found.complete_step):
        pytest.fail(
            f"{name}: the journal on {found.journal_at} has no {found.complete_step}: this "
            f"guest is not moved (run: pyinfra INVENTORY deploy.py --limit wave{found.spec.wave})"
        )
    return found
