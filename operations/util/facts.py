"""
Facts read once per host and arguments while pyinfra plans, fresh while it executes.

pyinfra 3 runs a fact's command each time something asks for it. While it plans (its
Prepare stage: the deploy file is read and each operation's generator runs to see whether
it would change anything) nothing runs on the hosts, so every read of the same fact with
the same arguments gets the same answer, and the plan is the same with one read: wave 1's
plan read each of its guests' journals 28 times on the KVM host. While pyinfra executes,
each read runs the fact again, since the operations before it changed the host.

pyinfra plans its hosts side by side (a greenlet each), and they ask the KVM host for the
same facts at the same moment (each guest's plan file, its journal): the first read is
shared with those that ask while it runs, instead of each running the command too.

Every operation and task reads its facts through ``fact``:

.. code:: python

    from operations.util.facts import fact

    groups = fact(host, LvmVolumeGroups)
    records = fact(host, MigrationJournal, state_dir=state_dir, guest=guest)
"""

from __future__ import annotations

import copy
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from gevent.event import AsyncResult
from pyinfra.api.facts import FactBase
from pyinfra.api.state import State, StateStage

T = TypeVar("T")

_PLANNED: WeakKeyDictionary[State, dict[tuple[str, type, str], AsyncResult]] = WeakKeyDictionary()


def fact(host: Any, cls: type[FactBase[T]], **kwargs: Any) -> T:
    """``host.get_fact(cls, **kwargs)``, read once per plan. Each caller gets a copy of
    its own: one that changes what it got changes nothing for the next."""
    state = getattr(host, "state", None)
    if not isinstance(state, State) or state.current_stage != StateStage.Prepare:
        return host.get_fact(cls, **kwargs)
    planned = _PLANNED.setdefault(state, {})
    key = (host.name, cls, repr(sorted(kwargs.items())))
    read = planned.get(key)
    if read is None:
        planned[key] = read = AsyncResult()
        try:
            read.set(host.get_fact(cls, **kwargs))
        except BaseException as error:
            del planned[key]  # not kept: the next caller reads again
            read.set_exception(error)  # those waiting for this read fail with it
            raise
    return copy.deepcopy(read.get())
