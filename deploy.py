"""
xen2kvm: move a wave of Xen domUs to KVM, one pyinfra run per wave.

    pyinfra inventory/prod.py deploy.py --limit wave1                   # all that is due
    pyinfra inventory/prod.py deploy.py --limit wave1 --data phase=plan   # one phase
    pyinfra inventory/prod.py deploy.py --limit wave1 --dry               # the exact plan

Phases, in order: plan (checks, no changes), prepare (kernel, grub, lvm2 in the running
guests), presync (the new disks, the warm copy), cutover (the downtime window). With no
phase, a run does every phase, each doing only what is due: over a finished wave it
changes nothing. ``--data phase=rollback`` returns the wave's guests to Xen. Whatever the
phase, a run first locks the guests it changes on their KVM host (``tasks/lock.py``): a
second run over the same guests is refused until the first one releases them, last.

A guest with ``rehome_to`` (instead of ``kvm_host``) in the fleet inventory moves to that
dom0 and stays on Xen, through the same phases: one flow per phase serves both kinds of
destination, whose differences are in ``tasks/destinations/``.
"""

from pyinfra import host, local
from pyinfra.api.exceptions import PyinfraError

from operations import flow

PHASES = ("plan", "prepare", "presync", "cutover")
ON_DEMAND = ("rollback",)

phase = host.data.get("phase")
if phase is not None and phase not in PHASES + ON_DEMAND:
    raise PyinfraError(f"--data phase={phase}: not one of {', '.join(PHASES + ON_DEMAND)}")

run = [phase] if phase else PHASES

# One include a line: pyinfra orders operations by the lines that lead to them, so each
# phase's operations all run before the next phase's (a loop here would interleave them).
# Each phase is one flow for every move, to KVM or to another dom0 (tasks/destinations/).
local.include("tasks/lock.py")  # every phase: one run at a time per guest
flow.barrier(name="lock: this run holds its guests", label="locks")
if "plan" in run:
    local.include("tasks/plan.py")
    flow.barrier(name="plan: done on every host", label="plan")
if "prepare" in run:
    local.include("tasks/prepare.py")
    flow.barrier(name="prepare: done on every host", label="prepare")
if "presync" in run:
    local.include("tasks/presync.py")
    flow.barrier(name="presync: done on every host", label="presync")
if "cutover" in run:
    local.include("tasks/cutover.py")
    flow.barrier(name="cutover: done on every host", label="cutover")
if "rollback" in run:
    local.include("tasks/rollback.py")
    flow.barrier(name="rollback: done on every host", label="rollback")
local.include("tasks/unlock.py")
flow.barrier(name="unlock: this run let go of its guests", label="unlocked")
