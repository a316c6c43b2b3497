"""Read the output of ``files/x2k-baseline.sh``: a guest's state, before and after.

The script prints ``## name`` sections of plain command output; ``parse`` splits them and
``Snapshot`` answers the questions the verify suite asks (which sockets listen, which
daemons run, what is mounted, which addresses sit on which interface, how big each log
was). Pure Python, so the same code reads the baseline filed at cutover and the picture
taken after the migration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

SCRIPT_NAME = "x2k-baseline.sh"
GUEST_PATH = "/var/lib/xen2kvm/baseline"  # in the guest: written right before it stops


@dataclass(frozen=True, order=True)
class Listener:
    proto: str  # tcp, udp
    address: str  # as printed: 0.0.0.0, [::], 127.0.0.1, *
    port: int
    process: str  # the program's name, "" when not shown

    def __str__(self) -> str:
        who = f" ({self.process})" if self.process else ""
        return f"{self.proto} {self.address}:{self.port}{who}"


@dataclass(frozen=True)
class LogFile:
    path: str
    size: int
    mtime: float


def parse(text: str) -> dict[str, list[str]]:
    """Sections of the script's output: name -> its lines (trailing blanks dropped)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            current = sections.setdefault(line[3:].strip(), [])
        elif current is not None:
            current.append(line.rstrip())
    for lines in sections.values():
        while lines and not lines[-1]:
            lines.pop()
    return sections


_SS_PROCESS = re.compile(r'users:\(\("([^"]+)"')


def _split_address(text: str) -> tuple[str, int] | None:
    address, _, port = text.rpartition(":")
    if not address or not port.isdigit():
        return None
    # ss prints "0.0.0.0%lo:53" for sockets bound to a device: keep the address.
    return address.split("%")[0], int(port)


def listeners_from_ss(lines: list[str]) -> set[Listener]:
    found = set()
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[0] not in ("tcp", "udp"):
            continue
        parsed = _split_address(fields[4])
        if parsed is None:
            continue
        match = _SS_PROCESS.search(line)
        found.add(Listener(fields[0], parsed[0], parsed[1], match.group(1) if match else ""))
    return found


def listeners_from_netstat(lines: list[str]) -> set[Listener]:
    found = set()
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or not fields[0].startswith(("tcp", "udp")):
            continue
        parsed = _split_address(fields[3])
        if parsed is None:
            continue
        proto = fields[0].rstrip("6")
        address = parsed[0]
        if fields[0].endswith("6"):
            address = "[::]" if address == "::" else f"[{address}]"
        program = fields[-1].split("/", 1)[1] if "/" in fields[-1] else ""
        found.add(Listener(proto, address, parsed[1], program))
    return found


@dataclass(frozen=True)
class Snapshot:
    sections: dict[str, list[str]]

    @classmethod
    def from_text(cls, text: str) -> Snapshot:
        sections = parse(text)
        if "time" not in sections:
            raise ValueError("not x2k-baseline output (no '## time' section)")
        return cls(sections)

    def lines(self, name: str) -> list[str]:
        return self.sections.get(name, [])

    def first(self, name: str) -> str | None:
        lines = self.lines(name)
        return lines[0] if lines else None

    @property
    def time(self) -> float:
        return float(self.lines("time")[0])

    @property
    def init(self) -> str | None:
        return self.first("init")

    @property
    def kernel_release(self) -> str | None:
        return self.first("kernel")

    @property
    def kernel_machine(self) -> str | None:
        lines = self.lines("kernel")
        return lines[1] if len(lines) > 1 else None

    @property
    def arch(self) -> str | None:
        return self.first("arch")

    @property
    def listeners(self) -> set[Listener]:
        if "listen-ss" in self.sections:
            return listeners_from_ss(self.lines("listen-ss"))
        return listeners_from_netstat(self.lines("listen-netstat"))

    @property
    def daemons(self) -> set[str]:
        return {line.strip() for line in self.lines("daemons") if line.strip()}

    @property
    def services_running(self) -> set[str] | None:
        """systemd's running services; None on a guest without systemd."""
        if "services-running" not in self.sections:
            return None
        return {line for line in self.lines("services-running") if line}

    @property
    def services_enabled(self) -> set[str]:
        return {line for line in self.lines("services-enabled") if line}

    @property
    def mounts(self) -> dict[str, tuple[str, str]]:
        """Mount point -> (filesystem type, options), real filesystems only."""
        found = {}
        for line in self.lines("mounts"):
            fields = line.split()
            if len(fields) >= 3:
                found[fields[0]] = (fields[1], fields[2])
        return found

    @property
    def swaps(self) -> list[str]:
        """The active swap devices (as /proc/swaps names them)."""
        return [line.strip() for line in self.lines("swaps") if line.strip()]

    def addresses(self, family: str = "inet") -> dict[str, set[str]]:
        """Interface -> its addresses with prefix length (``ip -o addr``)."""
        found: dict[str, set[str]] = {}
        for line in self.lines("addresses"):
            fields = line.split()
            if len(fields) >= 4 and fields[2] == family:
                found.setdefault(fields[1].split("@")[0], set()).add(fields[3])
        return found

    def interface_of(self, address: str) -> str | None:
        """The interface that holds an IPv4 ``address`` (not ``lo``, where a VIP may sit
        too): a guest with several NICs has each address on its own."""
        for interface, held in sorted(self.addresses().items()):
            if interface != "lo" and address in {a.split("/")[0] for a in held}:
                return interface
        return None

    @property
    def default_gateway(self) -> str | None:
        for line in self.lines("routes"):
            fields = line.split()
            if fields[:2] == ["default", "via"] and len(fields) > 2:
                return fields[2]
        return None

    def mac(self, interface: str) -> str | None:
        for line in self.lines("links"):
            fields = line.split()
            named = len(fields) > 1 and fields[1].rstrip(":").split("@")[0] == interface
            if named and "link/ether" in fields:
                return fields[fields.index("link/ether") + 1].lower()
        return None

    @property
    def nameservers(self) -> list[str]:
        return [line.strip() for line in self.lines("nameservers") if line.strip()]

    @property
    def resolver_search(self) -> list[str] | None:
        """resolv.conf's ``search`` and ``domain`` lines; None in an older baseline."""
        if "resolv-search" not in self.sections:
            return None
        return [" ".join(line.split()) for line in self.lines("resolv-search") if line.strip()]

    @property
    def interface_names(self) -> set[str] | None:
        """The network links other than lo (``eth0``, not ``eth0@if5``)."""
        if "links" not in self.sections:
            return None
        names = set()
        for line in self.lines("links"):
            fields = line.split()
            if len(fields) > 1 and fields[0].endswith(":"):
                names.add(fields[1].rstrip(":").split("@")[0])
        return names - {"lo"}

    # --- identity: None when the baseline was taken before the script recorded it -----

    @property
    def hostname(self) -> str | None:
        return self.first("hostname")

    @property
    def hostname_file(self) -> str | None:
        """The first line of /etc/hostname ("" when there is none)."""
        if "hostname-file" not in self.sections:
            return None
        return (self.first("hostname-file") or "").strip()

    @property
    def hosts(self) -> list[str] | None:
        """/etc/hosts' entries, blanks squeezed and sorted (their order does not matter)."""
        if "hosts" not in self.sections:
            return None
        return sorted(" ".join(line.split()) for line in self.lines("hosts") if line.strip())

    @property
    def timezone(self) -> list[str] | None:
        """``timezone NAME`` (/etc/timezone) and ``localtime link TARGET`` (or ``localtime
        copy CKSUM`` for a copied zone file)."""
        if "timezone" not in self.sections:
            return None
        return [line for line in self.lines("timezone") if line]

    @property
    def sysctls(self) -> dict[str, str | None] | None:
        """Each key set in /etc/sysctl.conf or /etc/sysctl.d -> its value then (None when
        the running kernel had no such key)."""
        if "sysctl" not in self.sections:
            return None
        found: dict[str, str | None] = {}
        for line in self.lines("sysctl"):
            key, sep, value = line.partition("=")
            if key.strip():
                found[key.strip()] = value.strip() if sep else None
        return found

    @property
    def mail_queue(self) -> int | None:
        value = self.first("mail-queue")
        return int(value) if value and value.strip().isdigit() else None

    @property
    def mail_queue_old(self) -> int | None:
        """Messages queued for 10 minutes or more (a stuck queue, not mail in flight)."""
        value = self.first("mail-queue-old")
        return int(value) if value and value.strip().isdigit() else None

    @property
    def mail_frozen(self) -> int | None:
        value = self.first("mail-frozen")
        return int(value) if value and value.strip().isdigit() else None

    @property
    def mail_route_root(self) -> list[str]:
        return [line for line in self.lines("mail-route-root") if line]

    @property
    def logs(self) -> dict[str, LogFile]:
        found = {}
        for line in self.lines("logs"):
            fields = line.split(" ", 2)
            if len(fields) == 3 and fields[0].isdigit():
                found[fields[2]] = LogFile(fields[2], int(fields[0]), float(fields[1]))
        return found

    @property
    def syslog(self) -> str | None:
        return self.first("syslog")

    @property
    def syslog_marker(self) -> str | None:
        return self.first("syslog-marker") or None


_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z))\s")
_TRADITIONAL = re.compile(r"^([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)\s")


def syslog_time(line: str, year: int | None = None) -> float | None:
    """The time a syslog line was written (RFC 3339 or the traditional format), if any.

    The traditional format has no year or zone: the current year and the local zone are
    assumed, which is what the syslog daemon that wrote it did.
    """
    match = _RFC3339.match(line)
    if match:
        return datetime.fromisoformat(match.group(1).replace("Z", "+00:00")).timestamp()
    match = _TRADITIONAL.match(line)
    if match:
        stamp = f"{year or datetime.now().year} {match.group(1)}"
        return datetime.strptime(stamp, "%Y %b %d %H:%M:%S").timestamp()
    return None
