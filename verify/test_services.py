"""Services: what ran before runs now and starts at boot, the same sockets listen, and
SSH logins work. The MTA is the mail checks' topic (test_mail.py), so it is left out here.
"""

from __future__ import annotations

import subprocess

import pytest

# Daemons that belong to the console or the platform, not to the guest's services: they
# differ between Xen and KVM by design (getty moves from hvc0 to ttyS0).
PLATFORM_DAEMONS = {"getty", "agetty", "udevd", "systemd-udevd", "init", "systemd"}


def _mta_processes(target) -> set[str]:
    mta = target.spec.mta
    if not mta:
        return set()
    return {mta, "exim", "exim4", "master", "sendmail", "postfix"}


def _service_log(target, service: str) -> str:
    if target.now.init == "systemd":
        return target.excerpt(f"journalctl -u {service} -n 15 --no-pager")
    return target.excerpt(f"grep -i {service} /var/log/syslog")


def test_service_running(target, guest_service):
    """Each service of the inventory runs."""
    service = guest_service
    running = target.host.service(service).is_running
    assert running, (
        f"{target.spec.name}: service {service} is not running (it is in the inventory's "
        "services)" + _service_log(target, service)
    )


def test_service_enabled(target, guest_service):
    """Each service of the inventory starts at boot."""
    service = guest_service
    enabled = target.host.service(service).is_enabled
    assert enabled, f"{target.spec.name}: service {service} is not enabled at boot"


def test_daemons_as_before(target):
    """Every daemon (child of init) that ran before the cutover runs now."""
    before = target.require_baseline().daemons - PLATFORM_DAEMONS - _mta_processes(target)
    missing = sorted(before - target.now.daemons)
    assert not missing, (
        f"{target.spec.name}: ran before the cutover, not now: {missing}"
        + target.excerpt("tail -n 15 /var/log/syslog")
    )


def test_enabled_as_before(target):
    """Every service enabled at boot before is still enabled."""
    before = target.require_baseline()
    if before.init != target.now.init:
        pytest.skip(f"{target.spec.name}: init changed ({before.init} -> {target.now.init})")
    skip = {f"{name}.service" for name in _mta_processes(target)} | _mta_processes(target)
    missing = sorted(before.services_enabled - target.now.services_enabled - skip)
    assert not missing, f"{target.spec.name}: enabled before, not now: {missing}"


def test_listeners_as_before(target, request):
    """The same sockets listen as before (the MTA's are the mail checks' topic)."""
    ignored = {item.lower() for item in request.config.getoption("ignore_listener")}

    def relevant(listeners):
        return {
            item
            for item in listeners
            if item.process not in _mta_processes(target)
            and f"{item.proto}:{item.port}" not in ignored
        }

    before = relevant(target.require_baseline().listeners)
    now = relevant(target.now.listeners)
    gone = sorted(str(item) for item in before - now)
    new = sorted(str(item) for item in now - before)
    assert not gone and not new, (
        f"{target.spec.name}: listening sockets differ from the baseline: "
        f"gone {gone or 'none'}, new {new or 'none'} (--ignore-listener PROTO:PORT "
        "documents an expected difference)"
    )


def test_ssh_login(target, ssh_config):
    """A fresh SSH login (no shared connection) with the inventory's user and key works."""
    name = target.spec.name
    result = subprocess.run(
        [
            "ssh",
            "-F",
            ssh_config,
            "-o",
            "ControlMaster=no",
            "-o",
            "ControlPath=none",
            name,
            "id -un",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == target.spec.ssh.user, (
        f"{name}: ssh login as {target.spec.ssh.user} gave rc {result.returncode}, "
        f"user {result.stdout.strip()!r}: {result.stderr.strip()}"
    )
