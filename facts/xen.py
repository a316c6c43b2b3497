"""
Facts about a Xen dom0: its running domains and the domains it starts at boot.
"""

from __future__ import annotations

import json
import re

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override

_LIST_LINE = re.compile(
    r"^(?P<name>\S+)\s+(?P<id>\d+)\s+(?P<mem>\d+)\s+(?P<vcpus>\d+)\s+(?P<state>[-a-z]{6})"
    r"\s+(?P<time>[\d.]+)\s*$"
)
# xl_info.c prints each key padded to 23 characters, then ": ".
_INFO_LINE = re.compile(r"^(?P<key>[a-z0-9_]+)\s+: ?(?P<value>.*)$")


class XenDomains(FactBase[dict]):
    """
    The domains a dom0 runs, from ``xl list`` (Domain-0 left out).

    .. code:: python

        {
            "web1": {"id": 3, "memory_mib": 512, "vcpus": 1, "state": "-b----"},
        }

    Sample ``xl list`` output::

        Name                                        ID   Mem VCPUs      State   Time(s)
        Domain-0                                     0  1024     2     r-----     123.4
        web1                                         3   512     1     -b----      12.0
    """

    default = dict

    @override
    def requires_command(self) -> str:
        return "xl"

    @override
    def command(self) -> str:
        return "xl list"

    @override
    def process(self, output: list[str]) -> dict:
        domains: dict = {}
        for line in output:
            if not line.strip() or line.startswith("Name "):
                continue
            match = _LIST_LINE.match(line.strip())
            if not match:
                raise FactProcessError(f"unexpected line in xl list output: {line!r}")
            if match["name"] == "Domain-0":
                continue
            domains[match["name"]] = {
                "id": int(match["id"]),
                "memory_mib": int(match["mem"]),
                "vcpus": int(match["vcpus"]),
                "state": match["state"],
            }
        return domains


class XenDomainDisks(FactBase[dict]):
    """
    The block devices each running domain of a dom0 uses, from ``xl list -l`` (whatever
    the domains are called; Domain-0 left out): what tells the dom0 a guest's LVs are in
    use, even by a domain under a name the inventory does not know.

    .. code:: python

        {
            "web1": ["/dev/xenvg/web1-root", "/dev/xenvg/web1-swap"],
        }

    Sample ``xl list -l`` output (JSON, xl's default; trimmed)::

        [
            {"domid": 0, "config": {"c_info": {"name": "Domain-0"}}},
            {"domid": 3, "config": {"c_info": {"name": "web1"},
                                    "disks": [{"pdev_path": "/dev/xenvg/web1-root",
                                               "vdev": "xvda2"}]}}
        ]
    """

    default = dict

    @override
    def requires_command(self) -> str:
        return "xl"

    @override
    def command(self) -> str:
        return "xl list -l"

    @override
    def process(self, output: list[str]) -> dict:
        text = "\n".join(output).strip()
        if not text:
            return {}
        try:
            domains = json.loads(text)
        except ValueError:
            raise FactProcessError(
                'xl list -l did not print JSON (set output_format="json" in '
                f"/etc/xen/xl.conf): {text[:80]!r}"
            ) from None
        if not isinstance(domains, list):
            raise FactProcessError(f"xl list -l printed no list of domains: {text[:80]!r}")
        found: dict = {}
        for domain in domains:
            config = domain.get("config") if isinstance(domain, dict) else None
            name = (config or {}).get("c_info", {}).get("name")
            if not isinstance(name, str) or not isinstance(config, dict):
                raise FactProcessError(f"xl list -l: a domain without a name: {domain!r:.80}")
            if domain.get("domid") == 0:
                continue
            found[name] = [
                # a relative target is below /dev, as libxl reads it (xen2kvm.xenconfig)
                path if path.startswith("/") else f"/dev/{path}"
                for disk in config.get("disks") or []
                if isinstance(path := disk.get("pdev_path"), str) and path
            ]
        return found


class XenAutostart(FactBase[dict]):
    """
    The entries of the dom0's autostart directory (``/etc/xen/auto``): the domains
    ``xendomains`` starts at boot. Each maps to its link target, or ``None`` for a plain
    file (a copy of the config, which autostarts just the same).

    .. code:: python

        {"web1.cfg": "/etc/xen/web1.cfg", "db.cfg": None}
    """

    default = dict

    @override
    def command(self, auto_dir: str = "/etc/xen/auto") -> StringCommand:
        directory = QuoteString(auto_dir)
        return StringCommand(
            "! test -d",
            directory,
            "|| find",
            directory,
            "-mindepth 1 -maxdepth 1 -printf '%f\\t%y\\t%l\\n'",
        )

    @override
    def process(self, output: list[str]) -> dict:
        entries: dict = {}
        for line in output:
            parts = line.split("\t")
            if len(parts) != 3:
                raise FactProcessError(f"unexpected line in autostart listing: {line!r}")
            name, kind, target = parts
            if kind == "d":
                continue
            entries[name] = target if kind == "l" else None
        return entries


class XenConfigFile(FactBase[str | None]):
    """
    The text of a Xen domain config file on the dom0, or ``None`` when it does not exist.
    It is parsed by ``xen2kvm.xenconfig`` (never executed).
    """

    @override
    def command(self, path: str) -> StringCommand:
        quoted = QuoteString(path)
        return StringCommand("! test -e", quoted, "|| cat", quoted)

    @override
    def process(self, output: list[str]) -> str | None:
        return "\n".join(output) + "\n"


class XenInfo(FactBase[dict]):
    """
    What ``xl info`` says about the dom0 and its hypervisor, as ``key: value`` (the
    values are strings). ``release`` is the dom0's running kernel (``uname -r`` of the
    dom0), which xen-tools style PV guests boot with; ``machine`` its architecture.

    .. code:: python

        {"host": "xen2", "release": "6.1.0-35-amd64", "machine": "x86_64",
         "xen_version": "4.17.5", ...}

    Sample ``xl info`` output (shortened)::

        host                   : xen2
        release                : 6.1.0-35-amd64
        version                : #1 SMP PREEMPT_DYNAMIC Debian 6.1.137-1 (2025-05-07)
        machine                : x86_64
        nr_cpus                : 2
        xen_version            : 4.17.5
    """

    default = dict

    @override
    def requires_command(self) -> str:
        return "xl"

    @override
    def command(self) -> str:
        return "xl info"

    @override
    def process(self, output: list[str]) -> dict:
        info: dict = {}
        for line in output:
            if not line.strip():
                continue
            match = _INFO_LINE.match(line)
            if not match:
                raise FactProcessError(f"unexpected line in xl info output: {line!r}")
            info[match["key"]] = match["value"].strip()
        for key in ("release", "machine"):
            if not info.get(key):
                raise FactProcessError(f"xl info gives no {key}: {output!r}")
        return info
