"""The cutover's rounds (xen2kvm.windows): no host serves two windows at once, the first
guests go first, and guests on separate hosts share a round."""

from __future__ import annotations

from xen2kvm.windows import rounds, waits_for_boots


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


def test_a_round_waits_for_boots_only_on_a_host_that_keeps_them_apart() -> None:
    hosts = {
        "web1": ("xen1", "kvm1"),
        "legacy1": ("xen1", "kvm1"),  # boots after web1 on kvm1
        "db1": ("xen2", "kvm2"),
        "rehomed": ("xen3", "xen1"),  # its destination is a dom0: xen1
    }
    assert waits_for_boots(["legacy1"], ["web1"], hosts, {"kvm1"})
    assert waits_for_boots(["legacy1", "db1"], ["web1"], hosts, {"kvm1"})
    assert not waits_for_boots(["db1"], ["web1"], hosts, {"kvm1"})  # kvm1 not used now
    assert not waits_for_boots(["legacy1"], ["web1"], hosts, {"kvm2"})  # kvm1 overlaps
    assert not waits_for_boots(["legacy1"], [], hosts, {"kvm1"})  # nothing booting
    # a guest of the round whose dom0 is where the one before boots (rehomed onto it)
    assert waits_for_boots(["legacy1"], ["rehomed"], hosts, {"xen1"})
