"""
lock: one run at a time per guest, whatever the phase. Each guest this run changes is
locked on its destination (``<state_dir>/locks/<guest>``, holding this run's id) before
anything else; a guest locked by another run stops this one before it changes anything,
with that run's id, since when, and how to clear a lock no run holds any more. A lock
left by a run of this controller that crashed or was interrupted is taken over: the next
run finishes the job. ``tasks/unlock.py`` releases the locks at the end.
"""

from tasks import steps

steps.guest_locks(held=True)
