"""The lab containers' init: which script starts and stops each daemon (no lab needed)."""

from __future__ import annotations

import os
import subprocess

import pytest

from xen2kvm.lab import containers


def test_rc_starts_each_daemon_with_its_own_script_else_the_lab_s_stand_in():
    assert containers.rc(["rsyslog", "ssh"], "start") == (
        "for s in rsyslog ssh; do if [ -x /etc/init.d/$s ]; then /etc/init.d/$s start; "
        "else /run/x2k-lab/init.d/$s start; fi; done"
    )


@pytest.mark.parametrize("script", sorted(p.name for p in containers.STANDINS.iterdir()))
def test_a_stand_in_is_an_executable_sh_script(script):
    path = containers.STANDINS / script
    assert os.access(path, os.X_OK)
    assert subprocess.run(["sh", "-n", str(path)], check=False).returncode == 0


def test_trixie_s_rsyslog_has_a_stand_in():
    """Debian 13's rsyslog has no init script (mail1's tree: images.TREES)."""
    assert (containers.STANDINS / "rsyslog").is_file()
