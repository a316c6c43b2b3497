"""
Network chores inside a migrated guest.
"""

from __future__ import annotations

import ipaddress

from pyinfra import host
from pyinfra.api import OperationValueError, QuoteString, StringCommand, operation

from operations.util.checks import check_port, check_timeout


def _check_interface(interface: object) -> None:
    # The kernel's dev_valid_name(): 1 to 15 bytes, not "." nor "..", no "/", ":" or space.
    if (
        not isinstance(interface, str)
        or not 0 < len(interface.encode()) < 16
        or interface in (".", "..")
        or any(char in "/:" or char.isspace() for char in interface)
    ):
        raise OperationValueError(f"interface {interface!r} is not a Linux interface name")


def plain_address(address: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """A plain IPv4 or IPv6 address given as text, or OperationValueError. ``ipaddress``
    also takes integers, bytes and IPv6 scope ids (``fe80::1%eth0``): a scope id is any
    text after ``%`` (``fe80::1%$(reboot)``), so none is taken here."""
    if not isinstance(address, str):
        raise OperationValueError(f"an address must be given as text, not {address!r}")
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise OperationValueError(f"{address!r} is not an IP address") from None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.scope_id is not None:
        raise OperationValueError(
            f"{address!r} has an IPv6 scope id (after '%'): give the plain address; a "
            "link-local address cannot be used here"
        )
    return parsed


def _ipv4_addresses(addresses: object) -> list[str]:
    if isinstance(addresses, str) or not isinstance(addresses, (list, tuple)):
        raise OperationValueError(f"addresses must be a list of addresses, not {addresses!r}")
    found = []
    for address in addresses:
        parsed = plain_address(address)
        if parsed.version == 6:
            raise OperationValueError(
                f"{address} is an IPv6 address: ARP is IPv4 only. Announce it with an "
                f"unsolicited neighbour advertisement (ndsend from the ndisc6 package)"
            )
        found.append(str(parsed))
    return found


@operation(is_idempotent=False)
def arp_announce(addresses: list[str], interface: str | None = None, count: int = 3):
    """
    Announce the guest's IPv4 addresses with unsolicited ARP, so switches and neighbours
    learn the MAC they moved to.

    + addresses: the IPv4 addresses to announce: each must be configured in the guest
    + interface: the guest's interface that holds them all; ``None``: each address is
      announced on the interface that holds it, found in the guest when it runs
    + count: how many announcements to send per address (one a second)

    It runs ``arping -U -c COUNT -i INTERFACE ADDRESS`` from Debian's ``arping`` package
    (Thomas Habets' arping 2.23 in Debian 12, what the guests have; not iputils-arping,
    whose interface option is ``-I``), one command per address. Without ``interface``,
    the same command first reads the interface from ``ip -o -4 addr show to ADDRESS``
    (the first that holds it other than ``lo``), so a guest with several NICs announces
    each address on its own. That arping exits 1 when no reply came, which is the normal
    outcome of unsolicited ARP: the command is taken as done when arping's statistics say
    all ``count`` packets went out. An address no interface (or not ``interface``) holds is
    refused rather than announced (that would take it from its owner).

    **Example:**

    .. code:: python

        net.arp_announce(
            name="Tell the LAN where web1 is now",
            addresses=["192.0.2.10", "10.0.0.10"],  # on eth0 and on eth1
        )
    """
    if interface is not None:
        _check_interface(interface)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise OperationValueError(f"count must be a positive number, not {count!r}")
    found = _ipv4_addresses(addresses)

    if not found:
        host.noop(f"no address to announce on {interface or 'any interface'}")
        yield from ()
        return
    sent = QuoteString(f"^{count} packets transmitted, ")
    arping = (
        '&& out="$(arping -U -c',
        QuoteString(str(count)),
        "-i",
    )
    check = (
        '2>&1)"; rc=$?; printf \'%s\\n\' "$out"; test "$rc" -eq 0'
        " || printf '%s\\n' \"$out\" | grep -q",
        sent,
    )
    for address in found:
        quoted = QuoteString(address)
        if interface is None:
            # ip -o prints "2: eth1    inet 10.0.0.10/24 ...": the name is the second word.
            # The same address may also sit on lo (a load balancer's VIP): ARP is not there.
            holder: tuple = (
                'dev="$(ip -o -4 addr show to',
                quoted,
                '| while read -r _ name _; do test "$name" = lo || { echo "$name"; break; }; '
                'done)"; test -n "$dev"'
                " || { printf '%s is not an address of this guest\\n'",
                quoted,
                ">&2; exit 1; }",
            )
            iface: object = '"$dev"'
        else:
            iface = QuoteString(interface)
            holder = (
                "ip -o -4 addr show dev",
                iface,
                "to",
                quoted,
                "| grep -q . || { printf '%s is not an address of %s\\n'",
                quoted,
                iface,
                ">&2; exit 1; }",
            )
        yield StringCommand(*holder, *arping, iface, quoted, *check)


@operation(is_idempotent=False)
def wait_for_port(address: str, port: int = 22, timeout: int = 600):
    """
    Wait, from this host, until a TCP port answers (a freshly started guest's sshd).
    Fails after ``timeout`` seconds, saying so.

    + address: the IPv4 or IPv6 address to reach
    + port: the TCP port
    + timeout: how long to wait, in seconds

    **Example:**

    .. code:: python

        net.wait_for_port(address="198.51.100.101", port=22, timeout=600)
    """
    ip = plain_address(address)
    check_port(port)
    check_timeout("timeout", timeout)
    # The address and port are bash's arguments ($1, $2), never part of its script.
    probe = 'until (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do sleep 2; done'
    yield StringCommand(
        "timeout",
        QuoteString(str(timeout)),
        "bash -c",
        QuoteString(probe),
        "x2k-wait",
        QuoteString(str(ip)),
        QuoteString(str(port)),
        "|| { echo",
        QuoteString(f"{ip} port {port} did not answer within {timeout} s"),
        ">&2; exit 1; }",
    )
