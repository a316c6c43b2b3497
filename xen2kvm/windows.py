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

from collections.abc import Collection, Sequence


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
