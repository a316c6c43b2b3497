"""Mail: the MTA runs and listens as before, a tagged test message is delivered, the queue
is not stuck, and root's mail still goes where it went."""

from __future__ import annotations

import re
import time

import pytest

from xen2kvm.waiting import wait_until

EXIM = ("exim4", "exim")


def _mta(target) -> str:
    if not target.spec.mta:
        pytest.skip(f"{target.spec.name}: no MTA in the inventory")
    return target.spec.mta


def _mta_listeners(snapshot, mta: str) -> set:
    names = {mta, *EXIM} if mta in EXIM else {mta, "master"}
    return {item for item in snapshot.listeners if item.process in names}


def test_mta_running(target):
    mta = _mta(target)
    running = target.host.service(mta).is_running
    assert running, f"{target.spec.name}: the MTA {mta} is not running" + target.excerpt(
        f"tail -n 20 /var/log/{mta}/mainlog || tail -n 20 /var/log/mail.log"
    )


def test_mta_listens_as_before(target):
    mta = _mta(target)
    before = _mta_listeners(target.require_baseline(), mta)
    now = _mta_listeners(target.now, mta)
    assert now == before, (
        f"{target.spec.name}: {mta} listened on {sorted(map(str, before)) or 'nothing'} "
        f"before, now on {sorted(map(str, now)) or 'nothing'}"
    )


def test_mail_delivered(target):
    """A tagged test message to root, submitted with sendmail, leaves the queue (delivered
    locally or handed to the relay)."""
    mta = _mta(target)
    if mta not in EXIM:
        pytest.skip(f"{target.spec.name}: delivery is traced in exim's log only, not {mta}'s")
    tag = f"x2k-verify-{int(time.time())}-{target.spec.name}@xen2kvm.invalid"
    message = f"Message-ID: <{tag}>\nSubject: xen2kvm verify\n\nxen2kvm verify test message\n"
    sent = target.host.run("printf %s %s | /usr/sbin/sendmail -oi root", "%s", message)
    assert sent.rc == 0, f"{target.spec.name}: sendmail refused the test message: {sent.stderr}"

    log = f"/var/log/{mta}/mainlog"
    state = {}

    def completed() -> bool:
        lines = target.host.run("grep -F %s %s", f"id={tag}", log).stdout
        match = re.search(r"^\S+ \S+ (\S+) <=", lines, re.M)
        if not match:
            return False
        state["id"] = match.group(1)
        trail = target.host.run("grep -F %s %s", state["id"], log).stdout
        state["trail"] = trail
        return " Completed" in trail

    assert wait_until(completed, timeout=60, step=2), (
        f"{target.spec.name}: the test message <{tag}> was not delivered within 60 s; its "
        f"log lines:\n    " + "\n    ".join(state.get("trail", "(none)").splitlines())
    )


def test_queue_not_stuck(target):
    """No more frozen messages than before, and no more queued for 10 minutes or more
    (mail in flight, just submitted by cron or an application, is not a stuck queue)."""
    _mta(target)
    before, now = target.require_baseline(), target.now
    if now.mail_queue_old is None:
        pytest.skip(f"{target.spec.name}: the queue's ages cannot be read (exim only)")
    frozen_before, frozen_now = before.mail_frozen or 0, now.mail_frozen or 0
    old_before = before.mail_queue_old or 0
    assert frozen_now <= frozen_before and now.mail_queue_old <= old_before, (
        f"{target.spec.name}: {old_before} message(s) queued for 10 min or more before "
        f"({frozen_before} frozen), {now.mail_queue_old} now ({frozen_now} frozen)"
        + target.excerpt("mailq")
    )


def test_root_mail_route(target):
    """Mail for root (and so cron's and the system's) is routed as before."""
    mta = _mta(target)
    if mta not in EXIM:
        pytest.skip(f"{target.spec.name}: routes are read with exim -bt only")
    before = target.require_baseline().mail_route_root
    now = target.now.mail_route_root
    assert now == before, (
        f"{target.spec.name}: root's mail was routed\n    "
        + "\n    ".join(before)
        + "\n  and is now\n    "
        + "\n    ".join(now)
    )
