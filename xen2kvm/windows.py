"""
The cutover's rounds: which guests' downtime windows run side by side.

Each guest's window (stop, final copy, fix-ups, start, answer, announce) is its own: no
guest is down while another guest's steps run on its hosts. A host serves one window at
a time (pyinfra runs one command at a time on a host), so the wave's guests are put in
rounds: guests whose hosts (dom0, destination, the guest itself) all differ share a
round and are cut over side by side; a guest that shares a host with an earlier one
waits for the next round, still running on Xen. Pure: every host of a run computes the
same rounds from the inventory.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence


def rounds(moves: Sequence[tuple[str, Collection[str]]]) -> list[list[str]]:
    """The moves (each a guest's name and the hosts its window uses) in rounds in which
    no host serves two moves: first fit, in the order given (a wave's guests in
    inventory order), so the first guests are cut over first.

    >>> rounds([("web1", {"xen1", "kvm1"}), ("mail1", {"xen2", "kvm2"}),
    ...         ("legacy1", {"xen1", "kvm1"})])
    [['web1', 'mail1'], ['legacy1']]
    """
    taken: list[set[str]] = []
    found: list[list[str]] = []
    for name, hosts in moves:
        uses = {name, *hosts}
        for index, busy in enumerate(taken):
            if not busy & uses:
                busy |= uses
                found[index].append(name)
                break
        else:
            taken.append(uses)
            found.append([name])
    return found


def waits_for_boots(
    now: Collection[str],
    booting: Collection[str],
    hosts: Mapping[str, Collection[str]],
    apart: Collection[str],
) -> bool:
    """Whether the round ``now`` waits for the guests ``booting`` (the round before, started
    at their destinations) to answer before its windows begin: one of them boots on a host
    of ``apart`` (one that cannot run a window while a guest boots on it: its inventory's
    ``windows_during_boot: false``) that a guest of ``now`` uses. ``hosts``: each guest's
    hosts, its destination last. Pure, as ``rounds``.

    >>> hosts = {"web1": ("xen1", "kvm1"), "legacy1": ("xen1", "kvm1"), "db1": ("xen2", "kvm2")}
    >>> waits_for_boots(["legacy1"], ["web1"], hosts, {"kvm1"})
    True
    >>> waits_for_boots(["db1"], ["web1"], hosts, {"kvm1"})  # kvm2: not where web1 boots
    False
    >>> waits_for_boots(["legacy1"], ["web1"], hosts, ())  # kvm1 runs windows meanwhile
    False
    """
    busy = {host for name in now for host in hosts[name]}
    return any(hosts[name][-1] in apart and hosts[name][-1] in busy for name in booting)
