"""How the tools outside pyinfra reach the fleet's hosts as the deploy does (pure: no pyinfra).

The verify suite, ``xen2kvm report`` and ``xen2kvm status`` read the deploy's own
inventory (``inventory/NAME.py`` or its ``.yml``) and write an ssh_config from each host's
pyinfra data: the same addresses, users, keys and known_hosts, strict host keys. Then a
plain ``ssh -F <config> HOST ...`` reaches a host exactly as a deploy would.
"""

from __future__ import annotations

import os
import runpy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import Xen2KvmError
from .inventory import Fleet, Guest, load_fleet
from .paths import DOM0_STATE

ROOT = Path(__file__).resolve().parent.parent


class InventoryFileError(Xen2KvmError):
    """An inventory path that is not a xen2kvm inventory."""


@dataclass(frozen=True)
class Inventory:
    fleet: Fleet
    host_data: dict[str, dict[str, Any]]  # pyinfra's data per host: ssh_*, x2k_*


def load_inventory(path: str) -> Inventory:
    """Hosts and their SSH settings as pyinfra would see them; a relative path that does not
    exist here is looked up from the repository's root."""
    source = Path(path)
    if not source.is_absolute():
        source = ROOT / source if not source.exists() else source.resolve()
    if not source.is_file():
        raise InventoryFileError(
            f"--inventory {path}: no such file (the deploy's inventory, e.g. inventory/prod.py)"
        )
    return _load_inventory(source)


def _load_inventory(source: Path) -> Inventory:
    if source.suffix == ".py":
        namespace = runpy.run_path(str(source))
        host_data: dict[str, dict[str, Any]] = {}
        for value in namespace.values():
            if isinstance(value, list):
                for entry in value:
                    if isinstance(entry, tuple) and len(entry) == 2:
                        host_data.setdefault(entry[0], dict(entry[1]))
        fleet_path = next(
            (data["x2k_fleet"] for data in host_data.values() if "x2k_fleet" in data), None
        )
        if fleet_path is None:
            raise InventoryFileError(
                f"{source}: not a xen2kvm inventory (no host has x2k_fleet): "
                "build its groups with xen2kvm.pyinfra_inventory.fleet_groups"
            )
        fleet = load_fleet(fleet_path)
    else:
        fleet = load_fleet(source)
        host_data = {
            name: data for group in fleet.pyinfra_groups().values() for name, data in group
        }
    return Inventory(fleet, host_data)


def ssh_config_text(host_data: dict[str, dict[str, Any]], control_dir: str) -> str:
    """One ``Host`` block per inventory host, with pyinfra's settings (strict host keys)."""
    blocks = []
    for name, data in host_data.items():
        lines = [f"Host {name}", f"    HostName {data.get('ssh_hostname', name)}"]
        lines.append(f"    User {data.get('ssh_user', 'root')}")
        lines.append(f"    Port {data.get('ssh_port', 22)}")
        if data.get("ssh_key"):
            lines.append(f"    IdentityFile {os.path.expanduser(data['ssh_key'])}")
            lines.append("    IdentitiesOnly yes")
        if data.get("ssh_known_hosts_file"):
            known = os.path.expanduser(data["ssh_known_hosts_file"])
            lines.append(f"    UserKnownHostsFile {known}")
            lines.append("    GlobalKnownHostsFile /dev/null")
        lines += [
            "    StrictHostKeyChecking yes",
            "    BatchMode yes",
            "    LogLevel ERROR",
            f"    ControlPath {control_dir}/%C",
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def select_guests(fleet: Fleet, waves: list[int], names: list[str]) -> list[Guest]:
    """The guests of ``waves`` and ``names`` (all when both are empty), in fleet order."""
    unknown = [name for name in names if name not in fleet.guests]
    if unknown:
        raise InventoryFileError(
            f"--guest {', '.join(unknown)}: not in {fleet.source} (guests: "
            f"{', '.join(fleet.guests)})"
        )
    missing = [wave for wave in waves if wave not in fleet.waves]
    if missing:
        raise InventoryFileError(f"--wave {missing[0]}: no such wave (waves: {fleet.waves})")
    return [
        guest
        for guest in fleet.guests.values()
        if (not waves or guest.wave in waves) and (not names or guest.name in names)
    ]


def destination(fleet: Fleet, guest: Guest) -> tuple[str, str]:
    """Where a guest's move keeps its journal: (host, state_dir)."""
    if guest.rehome_to:
        return guest.rehome_to, DOM0_STATE
    assert guest.kvm_host is not None  # the fleet loader demands one or the other
    return guest.kvm_host, fleet.kvm_hosts[guest.kvm_host].state_dir
