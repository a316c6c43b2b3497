"""The lab network: only inside namespaces the lab makes; nothing in the host's namespace.

- ``<prefix>-net``: bridge ``br0`` holding 198.51.100.1/24 (where ssh, pyinfra, pytest and
  the apt repo run), lo up; no uplink, no forwarding, no NAT.
- ``<prefix>-<host>``: one namespace per container host, eth0 (a veth whose other end,
  ``vh-<host>``, is on br0) with the host's address/24 (and its service addresses),
  default route via 198.51.100.1. The veth is created straight into both namespaces.
- The migration network: bridge ``br1`` in ``<prefix>-net``, no address there. A host
  with a ``migration_address`` (the dom0s) gets ``eth1`` on it (veth ``vm-<host>``); kvm1's
  second NIC is a tap on it (``kvmhost``). Copies between those hosts that dial a
  migration address cross only br1, and its ports' byte counters show it.
- The backend network: bridge ``br2`` in ``<prefix>-net``, holding 198.18.0.1/24. A guest
  with addresses there (web1, whose second vif is on Xen's ``xenbr1``) gets ``eth1`` on it
  (veth ``vb-<guest>``, with the vif's MAC); migrated, its second NIC joins br2 again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from .config import (
    BACKEND_BRIDGE,
    BACKEND_GATEWAY,
    BACKEND_PREFIXLEN,
    LAB_BRIDGE,
    LAB_GATEWAY,
    LAB_PREFIXLEN,
    MIGRATION_BRIDGE,
    MIGRATION_PREFIXLEN,
    LabConfig,
)
from .util import netns_exists, run

BRIDGE_MAC = "02:00:c6:33:64:01"  # locally administered; c6:33:64:01 is 198.51.100.1


def _ip(netns: str, *args: str) -> None:
    run(["ip", "-n", netns, *args], capture=True)


def lab_net_up(cfg: LabConfig) -> None:
    """Create ``<prefix>-net`` with br0, the migration network's br1 and the backend
    network's br2 (idempotent)."""
    ns = cfg.netns
    if not netns_exists(ns):
        run(["ip", "netns", "add", ns])
    _ip(ns, "link", "set", "lo", "up")
    # A fixed MAC: a bridge otherwise takes the lowest MAC of its ports, so it changed
    # whenever a guest's veth went away and every neighbour's ARP entry went stale.
    _bridge(ns, LAB_BRIDGE, f"{LAB_GATEWAY}/{LAB_PREFIXLEN}", BRIDGE_MAC)
    _bridge(ns, MIGRATION_BRIDGE)
    _bridge(ns, BACKEND_BRIDGE, f"{BACKEND_GATEWAY}/{BACKEND_PREFIXLEN}")


def _bridge(ns: str, name: str, address: str = "", mac: str = "") -> None:
    """The bridge ``name`` in ``ns``, made when it is not there, with ``mac`` and
    ``address`` (``ADDR/LEN``) when given, and up."""
    if run(["ip", "-n", ns, "link", "show", name], check=False, capture=True).returncode:
        _ip(ns, "link", "add", name, "type", "bridge")
    if mac:
        _ip(ns, "link", "set", name, "address", mac)
    if address:
        addrs = run(["ip", "-n", ns, "-4", "-o", "addr", "show", "dev", name], capture=True)
        if f" {address.split('/')[0]}/" not in addrs.stdout:
            _ip(ns, "addr", "add", address, "dev", name)
    _ip(ns, "link", "set", name, "up")


def _veth(cfg: LabConfig, ns: str, port: str, inside: str, bridge: str, mac: str = "") -> None:
    """A veth made straight into both namespaces: ``port`` on ``bridge`` in the lab
    namespace (up), ``inside`` in ``ns`` (with ``mac`` when given)."""
    peer = ["peer", "name", inside, *(["address", mac] if mac else []), "netns", ns]
    run(["ip", "link", "add", port, "netns", cfg.netns, "type", "veth", *peer])
    _ip(cfg.netns, "link", "set", port, "master", bridge, "up")


def lab_net_down(cfg: LabConfig) -> None:
    if netns_exists(cfg.netns):
        run(["ip", "netns", "del", cfg.netns])


def host_net_up(
    cfg: LabConfig,
    host: str,
    address: str,
    mac: str,
    extra: tuple[str, ...],
    migration_address: str | None = None,
    backend: tuple[str, ...] = (),
    backend_mac: str = "",
) -> str:
    """Namespace and eth0 of a container host (fresh each time), and eth1 on the migration
    network when it has an address there, or on the backend network (a guest's second
    vif, with ``backend_mac``) when it has addresses there; returns the namespace."""
    ns = cfg.host_netns(host)
    host_net_down(cfg, host)
    run(["ip", "netns", "add", ns])
    _veth(cfg, ns, f"vh-{host}"[:15], "eth0", LAB_BRIDGE, mac)
    _ip(ns, "link", "set", "lo", "up")
    _ip(ns, "addr", "add", f"{address}/{LAB_PREFIXLEN}", "dev", "eth0")
    for n, ip in enumerate(extra, start=1):
        _ip(ns, "addr", "add", f"{ip}/{LAB_PREFIXLEN}", "dev", "eth0", "label", f"eth0:{n}")
    _ip(ns, "link", "set", "eth0", "up")
    _ip(ns, "route", "add", "default", "via", LAB_GATEWAY)
    if migration_address:
        _eth1(
            cfg,
            ns,
            migration_veth(host),
            MIGRATION_BRIDGE,
            [migration_address],
            MIGRATION_PREFIXLEN,
        )
    elif backend:
        _eth1(cfg, ns, backend_veth(host), BACKEND_BRIDGE, backend, BACKEND_PREFIXLEN, backend_mac)
    return ns


def _eth1(
    cfg: LabConfig, ns: str, port: str, bridge: str, ips: Iterable[str], prefixlen: int,
    mac: str = "",
) -> None:  # fmt: skip
    """A host's second NIC, ``eth1``: a veth on ``bridge`` holding ``ips``."""
    _veth(cfg, ns, port, "eth1", bridge, mac)
    for ip in ips:
        _ip(ns, "addr", "add", f"{ip}/{prefixlen}", "dev", "eth1")
    _ip(ns, "link", "set", "eth1", "up")


def backend_veth(host: str) -> str:
    """The backend network's port (in ``<prefix>-net``, on br2) of a guest's second vif."""
    return f"vb-{host}"[:15]


def migration_veth(host: str) -> str:
    """The migration network's port (in ``<prefix>-net``, on br1) of a container host."""
    return f"vm-{host}"[:15]


def link_bytes(netns: str, link: str) -> tuple[int, int]:
    """``(rx_bytes, tx_bytes)`` of a link in a namespace, as its own counters say."""
    out = run(["ip", "-n", netns, "-s", "-j", "link", "show", "dev", link], capture=True).stdout
    stats = json.loads(out)[0]["stats64"]
    return int(stats["rx"]["bytes"]), int(stats["tx"]["bytes"])


def host_net_down(cfg: LabConfig, host: str) -> None:
    """Delete the host's namespace: its eth0 and the veth's other end go with it."""
    ns = cfg.host_netns(host)
    if netns_exists(ns):
        run(["ip", "netns", "del", ns])
