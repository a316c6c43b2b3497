"""xen2kvm.baseline: reading x2k-baseline output (captured from the lab's mail1 on Xen, and the
identity sections from a local run of the script)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xen2kvm.baseline import (
    Listener,
    Snapshot,
    listeners_from_netstat,
    parse,
    syslog_time,
)

ANY = "0.0.0.0"  # noqa: S104 (read from ss output; nothing binds)
DATA = Path(__file__).parent / "data" / "baseline"


@pytest.fixture
def mail1() -> Snapshot:
    return Snapshot.from_text((DATA / "mail1-xen.txt").read_text())


@pytest.fixture
def local() -> Snapshot:
    return Snapshot.from_text((DATA / "local-identity.txt").read_text())


def test_sections_split():
    assert parse("junk\n## a\n1\n\n## b\n2\n3\n\n") == {"a": ["1"], "b": ["2", "3"]}


def test_not_baseline_output():
    with pytest.raises(ValueError, match="not x2k-baseline output"):
        Snapshot.from_text("hello\n")


def test_listeners_from_ss(mail1):
    assert mail1.listeners == {
        Listener("tcp", ANY, 22, "sshd"),
        Listener("tcp", "[::]", 22, "sshd"),
        Listener("tcp", "127.0.0.1", 25, "exim4"),
        Listener("tcp", "[::1]", 25, "exim4"),
        Listener("tcp", ANY, 8080, "x2k-app"),
    }


def test_listeners_from_netstat():
    lines = [
        "tcp        0      0 0.0.0.0:22              0.0.0.0:*               LISTEN      284/sshd",
        "tcp6       0      0 :::22                   :::*                    LISTEN      284/sshd",
        "udp        0      0 0.0.0.0:68              0.0.0.0:*                   9/dhclient",
    ]
    assert listeners_from_netstat(lines) == {
        Listener("tcp", ANY, 22, "sshd"),
        Listener("tcp", "[::]", 22, "sshd"),
        Listener("udp", ANY, 68, "dhclient"),
    }


def test_daemons_and_services(mail1):
    assert mail1.daemons == {"cron", "exim4", "rsyslogd", "sshd", "x2k-app"}
    assert mail1.init == "sysvinit"
    assert mail1.services_running is None
    assert {"ssh", "exim4", "x2k-app"} <= mail1.services_enabled


def test_network(mail1):
    assert mail1.addresses()["eth0"] == {"198.51.100.103/24", "198.51.100.113/24"}
    assert mail1.default_gateway == "198.51.100.1"
    assert mail1.mac("eth0") == "00:16:3e:6b:1a:10"
    assert mail1.mac("eth9") is None


def test_each_address_is_found_on_the_nic_that_holds_it_never_on_lo(mail1):
    two_nics = Snapshot.from_text(
        "## time\n1\n## addresses\n"
        "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n"
        "1: lo    inet 198.18.0.7/32 scope global lo\\       valid_lft forever\n"
        "2: eth0    inet 198.51.100.101/24 scope global eth0\\       valid_lft forever\n"
        "3: eth1@if9    inet 198.18.0.101/24 scope global eth1\\       valid_lft forever\n"
        "3: eth1@if9    inet 198.18.0.7/24 scope global secondary eth1\\       valid_lft forever\n"
    )
    assert two_nics.interface_of("198.51.100.101") == "eth0"
    assert two_nics.interface_of("198.18.0.101") == "eth1"
    assert two_nics.interface_of("198.18.0.7") == "eth1"  # also on lo: a VIP
    assert two_nics.interface_of("127.0.0.1") is None
    assert two_nics.interface_of("198.18.0.1") is None
    assert mail1.interface_of("198.51.100.113") == "eth0"


def test_mounts_mail_and_logs(mail1):
    assert mail1.mounts["/srv"] == ("ext4", "rw,relatime")
    assert mail1.mail_queue == 0
    assert mail1.mail_frozen == 0
    assert mail1.mail_route_root[-2:] == [
        "root@mail1 -> /var/mail/mail",
        "transport = address_file",
    ]
    assert mail1.logs["/var/log/syslog"].size == 1907
    assert mail1.syslog == "/var/log/syslog"
    assert mail1.syslog_marker is None  # taken with --no-mark
    assert mail1.arch == "amd64"
    assert mail1.kernel_machine == "x86_64"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("2026-11-26T01:11:09.627809+00:00 mail1 x2k-app[289]: heartbeat", 1795655469.627809),
        ("2026-11-26T01:11:09Z mail1 cron[1]: x", 1795655469.0),
        ("no time here", None),
    ],
)
def test_syslog_time(line, expected):
    assert syslog_time(line) == expected


def test_syslog_time_traditional():
    first = syslog_time("Nov 26 01:11:09 mail1 cron[1]: x", year=2026)
    second = syslog_time("Nov 26 01:12:10 mail1 cron[1]: y", year=2026)
    assert first is not None and second is not None
    assert second - first == 61


def test_mail_queue_old_is_read_when_present(mail1):
    assert mail1.mail_queue_old is None  # taken before the script counted old messages
    later = Snapshot.from_text("## time\n1\n## mail-queue-old\n2\n")
    assert later.mail_queue_old == 2


# --- identity: hostname, /etc/hosts, resolvers, time zone, sysctls, interface names ----


def test_identity(local):
    assert local.hostname == "vm"
    assert local.hostname_file == "vm"
    assert local.hosts == ["127.0.0.1 localhost", "127.0.0.1 runsc", "127.0.0.1 vm"]
    assert local.timezone == ["timezone Etc/UTC", "localtime link /usr/share/zoneinfo/Etc/UTC"]
    assert local.nameservers == ["10.255.255.53"]
    assert local.resolver_search == []  # recorded: this resolv.conf has no search line


def test_interface_names(local, mail1):
    assert local.interface_names == {"eth0", "ifb0", "ifb1"}
    assert mail1.interface_names == {"eth0"}  # "eth0@if6": the peer is not in the name


def test_sysctls(local):
    assert local.sysctls == {
        "kernel.pid_max": "32768",
        "net.ipv4.tcp_rmem": "4096 131072 33554432",
        "not.a.key": None,  # not on this kernel: not compared
        "vm/swappiness": "60",
    }


def test_identity_blanks_and_order():
    text = (
        "## time\n1\n## hosts\n::1\tlocalhost  ip6-localhost\n127.0.0.1 localhost\n"
        "## resolv-search\nsearch  lab.test example.net\ndomain lab.test\n"
        "## sysctl\nkernel.domainname = \n## hostname-file\n"
    )
    snapshot = Snapshot.from_text(text)
    assert snapshot.hosts == ["127.0.0.1 localhost", "::1 localhost ip6-localhost"]
    assert snapshot.resolver_search == ["search lab.test example.net", "domain lab.test"]
    assert snapshot.sysctls == {"kernel.domainname": ""}  # set, and empty: still compared
    assert snapshot.hostname_file == ""  # recorded, and no /etc/hostname


def test_older_baseline_lacks_identity(mail1):
    """Taken before the script recorded them: None, so the checks skip instead of failing."""
    assert mail1.hostname == "mail1"  # recorded from the start
    assert mail1.hostname_file is None
    assert mail1.hosts is None
    assert mail1.resolver_search is None
    assert mail1.timezone is None
    assert mail1.sysctls is None
    assert Snapshot.from_text("## time\n1\n").interface_names is None
