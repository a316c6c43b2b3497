"""Turn a fleet file into pyinfra inventory groups (used by ``inventory/*.py``).

A bad fleet file stops pyinfra before it connects anywhere, with every problem listed
and nothing else: see ``FleetRefused`` for how the message reaches the operator bare.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any

from pyinfra.api.exceptions import InventoryError as PyinfraInventoryError

from .errors import Xen2KvmError
from .inventory import Fleet, Guest, load_fleet


class FleetRefused(PyinfraInventoryError, Xen2KvmError):
    """The fleet file is wrong: its problems, as pyinfra prints an inventory error.

    pyinfra 3 prints a ``PyinfraError`` raised while it runs an inventory file as
    ``--> pyinfra error in <file> line <n>: <message>``, the file and line being the
    innermost frame of the exception's ``__traceback__`` outside pyinfra: here, this
    module, which tells the operator nothing (the message names the fleet file, the host
    and the field). The traceback is left out of what pyinfra reads, so it prints
    ``--> pyinfra error: <message>``; Python, pytest and ``sys.exc_info()`` still see it.
    """

    @property  # type: ignore[override]
    def __traceback__(self) -> None:
        return None

    @__traceback__.setter
    def __traceback__(self, tb: TracebackType | None) -> None:
        BaseException.__traceback__.__set__(self, tb)  # type: ignore[attr-defined]


def fleet_groups(
    path: str | Path, extra_data: Mapping[str, Any] | None = None
) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Validate the fleet file and return its pyinfra groups.

    Every host's data carries ``x2k_fleet`` (the fleet file's absolute path) so facts and
    operations can read the whole fleet with ``fleet_for(host)``. A bad fleet file stops
    pyinfra before it connects anywhere, with every problem listed.
    """
    path = Path(path).resolve()
    data = {"x2k_fleet": str(path), **(extra_data or {})}
    try:
        fleet = load_fleet(path, data)
    except Xen2KvmError as exc:
        raise FleetRefused(str(exc)) from None
    return fleet.pyinfra_groups()


@lru_cache(maxsize=8)
def _load(path: str) -> Fleet:
    return load_fleet(path)


def fleet_for(host: Any) -> Fleet:
    """The fleet a pyinfra host belongs to (read once per fleet file and process)."""
    path = host.data.get("x2k_fleet")
    if not path:
        raise PyinfraInventoryError(f"{host.name}: not from a xen2kvm fleet inventory")
    return _load(path)


def selected_guests(host: Any) -> list[Guest]:
    """The fleet's guests this run covers: all, or those ``--limit`` selected."""
    fleet = fleet_for(host)
    limit = getattr(host.state, "limit_hosts", None)
    names = {h.name for h in limit} if limit is not None else set(fleet.guests)
    return [guest for name, guest in fleet.guests.items() if name in names]
