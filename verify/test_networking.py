"""Networking: the guest holds its addresses, with its MAC, routes, resolvers and interface
names as before, and no other host still answers for them (the old Xen guest, a stale ARP
cache)."""

from __future__ import annotations

import ipaddress
import shlex
import subprocess

import pytest


def _bare(address: str) -> str:
    return address.split("/")[0]


def _interface(target, ip: str) -> str:
    """The interface ``ip`` belongs on: the one that held it before the cutover (a guest
    with several NICs has addresses on each), else the inventory's ``interface``."""
    held = target.baseline.interface_of(ip) if target.baseline is not None else None
    return held or target.spec.interface


def _interfaces(target) -> list[str]:
    """The interfaces that hold the inventory's addresses, the planned one first."""
    found = [_interface(target, ip) for ip in target.spec.ips]
    return list(dict.fromkeys([target.spec.interface, *found]))


def _planned_macs(target) -> list[str]:
    """The MACs of the domain's interfaces, as defined on the KVM host."""
    return [mac.get("address", "").lower() for mac in target.domain.iter("mac")]


def test_service_address(target, guest_ip):
    """Every address of the inventory is on its interface (the one that had it before)."""
    ip = guest_ip
    iface = _interface(target, ip)
    found = target.now.addresses().get(iface, set())
    assert ip in {_bare(a) for a in found}, (
        f"{target.spec.name}: expected {ip} on {iface}, found {sorted(found) or 'nothing'}"
        + target.excerpt("ip -o addr show")
    )


def test_addresses_as_before(target):
    """Addresses the guest had before beyond the inventory's are back too."""
    before = target.require_baseline().addresses()
    now = target.now.addresses()
    planned = set(target.spec.ips)
    missing = [
        f"{address} on {iface}"
        for iface, addresses in before.items()
        if iface != "lo"
        for address in addresses
        if _bare(address) not in planned and address not in now.get(iface, set())
    ]
    assert not missing, (
        f"{target.spec.name}: addresses it had before the cutover are gone: {missing}"
        + target.excerpt("ip -o addr show")
    )


def test_planned_mac(target):
    """Each interface holding the inventory's addresses has a MAC of the libvirt domain
    (its Xen MAC when kept); a guest rehomed on Xen keeps its MACs."""
    wrong = []
    planned = _planned_macs(target) if target.kvm is not None else []
    for iface in _interfaces(target):
        found = target.now.mac(iface)
        if target.kvm is not None and found not in planned:
            wrong.append(f"{iface} has MAC {found}, the domain defines {planned}")
        if target.kvm is None or (target.spec.keep_macs and target.baseline is not None):
            before = target.require_baseline().mac(iface)
            if found != before:
                wrong.append(
                    f"{iface} changed MAC (kept by keep_macs, or on Xen): {before} on Xen, "
                    f"{found} now"
                )
    assert not wrong, f"{target.spec.name}: " + "; ".join(wrong)


def test_default_route(target):
    """The default route goes through the planned gateway (or the one it had before)."""
    expected = target.spec.gateway or target.require_baseline().default_gateway
    if expected is None:
        pytest.skip(f"{target.spec.name}: no gateway planned and none before")
    found = target.now.default_gateway
    assert found == expected, (
        f"{target.spec.name}: expected default route via {expected}, found {found}"
        + target.excerpt("ip route show")
    )


def test_gateway_reachable(target):
    """The gateway answers ARP on the guest's interface."""
    gateway = target.spec.gateway or target.now.default_gateway
    if gateway is None:
        pytest.skip(f"{target.spec.name}: no gateway")
    iface = target.spec.interface
    result = target.host.run("arping -c 2 -w 4 -i %s %s", iface, gateway)
    assert result.rc == 0, (
        f"{target.spec.name}: gateway {gateway} did not answer ARP on {iface}"
        + target.excerpt(
            f"ip neigh show; arping -c 1 -w 2 -i {shlex.quote(iface)} {shlex.quote(gateway)}"
        )
    )


def test_nameservers(target):
    """The configured resolvers are in resolv.conf."""
    planned = list(target.spec.nameservers)
    if not planned:
        pytest.skip(f"{target.spec.name}: no nameservers in the inventory")
    found = target.now.nameservers
    missing = [server for server in planned if server not in found]
    assert not missing, (
        f"{target.spec.name}: resolv.conf lacks {missing} (it lists {found or 'none'})"
    )


def test_no_duplicate_address(target, guest_ip):
    """No other host answers ARP for the guest's address (the Xen guest is really gone)."""
    ip = guest_ip
    iface = _interface(target, ip)
    # Debian's arping (Habets): asked from 0.0.0.0, only another holder of the address
    # replies; exit 0 means a reply came.
    result = target.host.run("arping -0 -c 2 -w 3 -i %s %s", iface, ip)
    assert result.rc != 0, f"{target.spec.name}: another host answers for {ip}:" + "\n    ".join(
        ["", *result.stdout.strip().splitlines()]
    )


def _local_networks() -> list[ipaddress.IPv4Interface]:
    output = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=False
    ).stdout
    return [ipaddress.IPv4Interface(line.split()[3]) for line in output.splitlines()]


def test_neighbour_entry(target, guest_ip):
    """Where verify runs on the guest's network (the gateway, in the lab), its neighbour
    entry for the address shows the guest's MAC: no lingering ARP cache."""
    ip = guest_ip
    address = ipaddress.IPv4Address(ip)
    if not any(address in net.network for net in _local_networks()):
        pytest.skip(f"verify does not run on {ip}'s network: no neighbour table to read")
    output = subprocess.run(
        ["ip", "neigh", "show", "to", ip], capture_output=True, text=True, check=False
    ).stdout.split()
    found = output[output.index("lladdr") + 1].lower() if "lladdr" in output else None
    expected = target.now.mac(_interface(target, ip))
    assert found in (None, expected), (
        f"{target.spec.name}: the neighbour entry for {ip} here says {found}, the guest has "
        f"{expected} (stale ARP cache: re-announce with arping -U, or wait for it to expire)"
    )


def _resolv_lines(snapshot, search: bool) -> list[str]:
    lines = [f"nameserver {server}" for server in snapshot.nameservers]
    return lines + (snapshot.resolver_search or []) if search else lines


def test_resolvers_as_before(target):
    """resolv.conf's nameservers (in order) and its search and domain lines are those it
    had before the cutover (an older baseline: the nameservers only)."""
    search = target.require_baseline().resolver_search is not None
    before = _resolv_lines(target.require_baseline(), search)
    now = _resolv_lines(target.now, search)
    assert now == before, (
        f"{target.spec.name}: resolv.conf had\n    "
        + "\n    ".join(before or ["(no nameserver)"])
        + "\n  and now has\n    "
        + "\n    ".join(now or ["(no nameserver)"])
        + "\n  /etc/resolv.conf:"
        + target.excerpt("cat /etc/resolv.conf")
    )


def test_interface_names_as_before(target):
    """The network interfaces keep their names (eth0 does not come back as ens3)."""
    before = target.recorded("interface_names")
    now = target.now.interface_names or set()
    assert now == before, (
        f"{target.spec.name}: interfaces {sorted(before)} before, {sorted(now)} now "
        f"(gone {sorted(before - now) or 'none'}, new {sorted(now - before) or 'none'})"
        + target.excerpt("ip -o link show")
    )
