"""The run id in the guest locks, and which lock a run of this controller may take over."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from xen2kvm import runid


def test_the_run_id_names_this_controller_and_process():
    host, pid, start = runid.parse(runid.run_id())
    assert (host, pid) == (socket.gethostname(), os.getpid())
    assert start == runid.process_start(os.getpid())
    assert runid.run_id() == runid.run_id()  # once per process


@pytest.mark.parametrize("text", ["", "ctl:12", "ctl:x:1", "c tl:1:2", "ctl:1:2; reboot"])
def test_parse_refuses_what_is_not_a_run_id(text):
    assert runid.parse(text) is None


def test_a_live_run_of_this_controller_is_not_gone():
    ours = "ctl:4242:1"
    other = f"ctl:{os.getppid()}:{runid.process_start(os.getppid())}"
    assert runid.gone(other, ours) is False


def test_a_run_whose_process_ended_is_gone():
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)  # fmt: skip
    assert runid.gone(f"ctl:{int(child.stdout)}:1", "ctl:4242:1") is True


def test_a_reused_pid_is_gone():
    """The pid runs, but it is not the process that took the lock (another start)."""
    assert runid.gone(f"ctl:{os.getpid()}:not-its-start", "ctl:4242:1") is True


def test_another_controllers_run_is_never_gone_from_here():
    assert runid.gone("laptop:99999999:1", "ctl:4242:1") is False


def test_our_own_run_is_not_gone():
    assert runid.gone(runid.run_id(), runid.run_id()) is False


def test_the_lock_of_a_live_run_of_this_controller_is_refused():
    """journal.lock's case that a fixture cannot hold: the owner must be a live process."""
    from pyinfra.api import OperationError

    from tests.harness import run_operation

    live = f"ctl:{os.getpid()}:{runid.process_start(os.getpid())}"
    key = "guest=web1, state_dir=/var/lib/xen2kvm"
    case = {
        "kwargs": {"guest": "web1", "owner": "ctl:4242:1", "state_dir": "/var/lib/xen2kvm"},
        "facts": {
            "journal.MigrationLock": {key: {"owner": live, "since": 1795650051}},
            "journal.MigrationCommand": {key: {"pid": 29794, "step": "presync:/", "running": True}},
        },
    }
    with pytest.raises(OperationError, match=f"pid {os.getpid()} still runs on this controller"):
        run_operation("journal.lock", case)
