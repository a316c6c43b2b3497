"""Logs: the syslog is continuous across the cutover: the pre-cutover line is still
there, new lines arrive, the gap is no longer than the downtime, nothing was truncated,
and the logger daemon runs."""

from __future__ import annotations

import time

import pytest

from xen2kvm.baseline import syslog_time
from xen2kvm.waiting import wait_until

SYSLOG_DAEMONS = ("rsyslogd", "syslog-ng", "syslogd")
BOOT_LINE = 'rsyslogd: [origin software="rsyslogd"'


def _syslog(target) -> str:
    path = target.require_baseline().syslog
    if not path:
        pytest.skip(f"{target.spec.name}: no syslog file before the cutover")
    return path


def _truncated(target, path: str) -> bool:
    before = target.require_baseline().logs.get(path)
    now = target.now.logs.get(path)
    return before is not None and (now is None or now.size < before.size)


def _judgeable(target, path: str) -> None:
    if _truncated(target, path):
        pytest.skip(f"{target.spec.name}: {path} was truncated (test_no_log_truncated)")


def test_logger_running(target):
    found = [name for name in SYSLOG_DAEMONS if name in target.now.daemons]
    assert found, (
        f"{target.spec.name}: no syslog daemon runs (looked for {', '.join(SYSLOG_DAEMONS)})"
    )


def test_pre_cutover_line_kept(target):
    """The tagged line logged just before the stop is still in the syslog."""
    path = _syslog(target)
    _judgeable(target, path)
    marker = target.require_baseline().syslog_marker
    assert marker, f"{target.spec.name}: the baseline recorded no pre-cutover syslog line"
    found = target.host.run("grep -qF %s %s %s.1", marker, path, path)  # -q: 0 if in either
    assert found.rc == 0, (
        f"{target.spec.name}: the pre-cutover line is gone from {path}:\n    {marker}"
        + target.excerpt(f"head -n 3 {path}")
    )


def test_new_lines_arrive(target):
    """A tagged line logged now reaches the syslog file."""
    path = target.now.syslog
    assert path, f"{target.spec.name}: no syslog file (/var/log/syslog, /var/log/messages)"
    tag = f"x2k-verify log line {int(time.time())}"
    target.host.run("logger -t xen2kvm-verify %s", tag)
    assert wait_until(lambda: target.host.run("grep -qF %s %s", tag, path).rc == 0, 20, 1), (
        f"{target.spec.name}: a line logged now did not reach {path} within 20 s"
        + target.excerpt(f"tail -n 5 {path}")
    )


def test_gap_within_downtime(target, request):
    """The syslog's gap around the cutover (last line of the Xen guest to the first of the
    KVM boot) is at most the measured downtime plus the tolerance."""
    path = _syslog(target)
    _judgeable(target, path)
    marker = target.require_baseline().syslog_marker
    downtime = target.downtime
    if marker is None or downtime is None:
        pytest.skip(f"{target.spec.name}: no pre-cutover line or no measured downtime")
    lines = target.host.run("grep -A 100000 -F %s %s", marker, path).stdout.splitlines()
    boot = next((i for i, line in enumerate(lines) if BOOT_LINE in line and i > 0), None)
    assert boot is not None, (
        f"{target.spec.name}: no syslog start line after the pre-cutover line in {path}"
    )
    last, first = syslog_time(lines[boot - 1]), syslog_time(lines[boot])
    assert last is not None and first is not None, (
        f"{target.spec.name}: unreadable syslog times:\n    {lines[boot - 1]}\n    {lines[boot]}"
    )
    tolerance = request.config.getoption("log_gap_tolerance")
    gap = first - last
    assert gap <= downtime + tolerance, (
        f"{target.spec.name}: the syslog has a {gap:.0f} s gap around the cutover, the "
        f"measured downtime was {downtime:.0f} s (+{tolerance:.0f} s tolerance):\n    "
        f"{lines[boot - 1]}\n    {lines[boot]}"
    )


def test_no_log_truncated(target):
    """No log file is shorter than before the cutover (unless it was rotated since)."""
    before = target.require_baseline()
    now = target.now.logs
    shrunk = [
        f"{path}: {old.size} bytes before, {now[path].size if path in now else 'missing'} now"
        for path, old in before.logs.items()
        if (path not in now or now[path].size < old.size)
        and not (f"{path}.1" in now and now[f"{path}.1"].mtime > before.time)
    ]
    assert not shrunk, f"{target.spec.name}: truncated or lost logs: {shrunk}"
