"""The cutover's rounds (xen2kvm.windows): no host serves two windows at once, the first
guests go first, and guests on separate hosts share a round."""

from __future__ import annotations

from xen2kvm.windows import rounds


def test_guests_on_separate_hosts_share_a_round() -> None:
    moves = [("a", ("xen1", "kvm1")), ("b", ("xen2", "kvm2")), ("c", ("xen3", "kvm3"))]
    assert rounds(moves) == [["a", "b", "c"]]


def test_a_shared_dom0_or_destination_waits_for_the_next_round() -> None:
    moves = [
        ("web1", ("xen1", "kvm1")),
        ("legacy1", ("xen1", "kvm1")),
        ("mail1", ("xen1", "kvm2")),  # its dom0 is taken twice
        ("db1", ("xen2", "kvm1")),  # its destination is taken twice
        ("www", ("xen3", "kvm3")),
    ]
    assert rounds(moves) == [["web1", "www"], ["legacy1"], ["mail1", "db1"]]


def test_no_host_serves_two_windows_in_a_round() -> None:
    hosts = {f"g{i}": (f"xen{i % 3}", f"kvm{i % 4}") for i in range(24)}
    found = rounds(list(hosts.items()))
    assert sorted(name for r in found for name in r) == sorted(hosts)
    for names in found:
        used = [host for name in names for host in (name, *hosts[name])]
        assert len(used) == len(set(used)), names
    # First fit: a guest is never in an earlier round than one listed before it with
    # which it shares a host.
    where = {name: index for index, names in enumerate(found) for name in names}
    order = list(hosts)
    for i, first in enumerate(order):
        for later in order[i + 1 :]:
            if set(hosts[first]) & set(hosts[later]):
                assert where[first] < where[later], (first, later)


def test_a_guest_named_like_a_host_is_not_confused_with_it() -> None:
    # Inventory names are the keys: a guest's own host name counts as a host it uses.
    assert rounds([("kvm1", ("xen1", "kvm2")), ("x", ("xen2", "kvm1"))]) == [["kvm1"], ["x"]]
    assert rounds([]) == []
