"""
rollback: back to the source dom0 at any point after the cutover began. The guest is
stopped at its destination (a KVM domain is undefined, its disk kept; a rehomed guest's
autostart there is removed), its autostart on the dom0 restored and it is started there
again (only once the destination shows it stopped), its addresses announced, and the
migration key removed from it. Whatever a window interrupted before its end left open is
closed too: the destination's connection to the dom0 (``ssh.master``), the stopped guest's
LVs mounted on the dom0, and the destination key's access to them there. The source's LVs
were only ever read: the guest comes back as it was at the cutover; what it wrote at the
destination since stays there only. The journal notes the rollback: a later run moves the
guest afresh.

A guest the run cannot reach when it starts (it never booted at its destination) is
still stopped there and started on its dom0; pyinfra then ends the run with an error for
that host, and the next rollback run, which reaches it, announces its addresses and takes
the key away.
"""

from operations import flow, journal, net, sync
from tasks import steps
from tasks.move import moves
from xen2kvm.journal import ROLLED_BACK

CONNECT_TIMEOUT = 300  # seconds for the guest to answer SSH on its dom0 again

for move in moves("dest", need_plan=False):
    steps.dom0_connection(move, held=False)
    move.to.stopped(move)

flow.barrier(name="rollback: stopped at the destinations", label="stopped at the destinations")

for move in moves("source", need_plan=False):
    guest, source = move.guest, move.source.name
    steps.source_let_go(move)
    move.to.not_running(move)
    steps.xen_state(move, source, guest.xen_config, running=True, again=True)

flow.barrier(name="rollback: the Xen guests are started", label="Xen guests started")

for move in moves("dest", need_plan=False):
    net.wait_for_port(
        name=f"{move.guest.name}: answers SSH on {move.source.name} again",
        address=move.guest.address,
        port=move.guest.ssh.port,
        timeout=CONNECT_TIMEOUT,
    )
    journal.milestone(
        name=f"{move.guest.name}: rolled back to {move.source.name}",
        guest=move.guest.name,
        step=ROLLED_BACK,
        state_dir=move.state_dir,
    )

flow.barrier(name="rollback: the Xen guests answer", label="Xen guests answer")

for move in moves("guest", need_plan=False):
    steps.announce(move, f"Xen on {move.source.name}")
    sync.access(
        name=f"{move.guest.name}: the key of {move.dest} no longer reads it",
        key_host=move.dest,
        key_path=move.key,
        from_address=move.address,
        present=False,
    )
