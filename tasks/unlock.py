"""
unlock: the end of the run; each destination releases the guest locks this run took
(``tasks/lock.py``), and any a run of this controller that is gone left on its guests. A
run that stops before this line leaves its locks: the next run from the same controller
takes them over.
"""

from tasks import steps

steps.guest_locks(held=False)
