"""Identity: what the guest calls itself and how it is set up at boot (hostname, /etc/hosts,
time zone, sysctls) is what it was just before the cutover. Nothing in the inventory lists
these, so the baseline is the only "before"; a baseline taken by an older x2k-baseline
lacks them, and the check skips."""

from __future__ import annotations

from collections import Counter

import pytest


def test_hostname_as_before(target):
    """The running hostname and /etc/hostname are those it had."""
    baseline = target.require_baseline()
    before = {"hostname": baseline.hostname, "/etc/hostname": baseline.hostname_file}
    now = {"hostname": target.now.hostname, "/etc/hostname": target.now.hostname_file}
    if before["/etc/hostname"] is None:  # an older baseline: the running name only
        del before["/etc/hostname"], now["/etc/hostname"]
    assert now == before, (
        f"{target.spec.name}: the hostname was {before}, it is now {now}"
        + target.excerpt("hostname; cat /etc/hostname")
    )


def test_hosts_as_before(target):
    """/etc/hosts has the entries it had (comments, blanks and order aside)."""
    before = Counter(target.recorded("hosts"))
    now = Counter(target.now.hosts or [])
    gone, new = sorted((before - now).elements()), sorted((now - before).elements())
    assert not gone and not new, (
        f"{target.spec.name}: /etc/hosts differs from the baseline:\n    gone: "
        + ("\n          ".join(gone) or "none")
        + "\n    new:  "
        + ("\n          ".join(new) or "none")
    )


def test_timezone_as_before(target):
    """The time zone (/etc/timezone and the /etc/localtime link) is the one it had."""
    before = target.recorded("timezone")
    now = target.now.timezone or []
    assert now == before, (
        f"{target.spec.name}: the time zone was\n    "
        + "\n    ".join(before or ["(none recorded)"])
        + "\n  and is now\n    "
        + "\n    ".join(now or ["(none)"])
    )


def _value_now(target, key: str) -> str | None:
    """A sysctl's value now: from the picture taken now, or asked for when the key is no
    longer in the sysctl files."""
    listed = (target.now.sysctls or {}).get(key)
    if listed is not None:
        return listed
    result = target.host.run("sysctl -n %s", key)
    return " ".join(result.stdout.split()) if result.rc == 0 else None


def test_sysctls_as_before(target):
    """Every sysctl set in /etc/sysctl.conf or /etc/sysctl.d before the cutover has the
    value it had then (keys the Xen kernel did not have are not compared)."""
    before = {key: value for key, value in target.recorded("sysctls").items() if value is not None}
    if not before:
        pytest.skip(f"{target.spec.name}: no sysctl set in /etc/sysctl.conf or /etc/sysctl.d")
    changed = [
        f"{key} = {value} before, {now if now is not None else 'no such key'} now"
        for key, value in sorted(before.items())
        if (now := _value_now(target, key)) != value
    ]
    assert not changed, (
        f"{target.spec.name}: sysctls set at boot differ from the baseline:\n    "
        + "\n    ".join(changed)
        + target.excerpt("grep -Hv '^[[:space:]]*[#;]' /etc/sysctl.conf /etc/sysctl.d/*.conf")
    )
