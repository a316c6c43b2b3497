"""
Facts about the libvirt domains of a KVM host.
"""

from __future__ import annotations

import re

from pyinfra.api import FactBase, QuoteString, StringCommand
from pyinfra.api.exceptions import FactProcessError
from typing_extensions import override

_URI = re.compile(r"[a-z][a-z0-9+.-]*://\S*")


def uri_problem(uri: object) -> str | None:
    """Why ``uri`` is no libvirt URI to pass to ``virsh -c`` (``None``: it is, or absent)."""
    if uri is None or (isinstance(uri, str) and _URI.fullmatch(uri)):
        return None
    return f"not a libvirt URI: {uri!r} (e.g. qemu:///system)"


def virsh(uri: str | None = None) -> StringCommand:
    """``virsh``, or ``virsh -c URI`` (quoted): the KVM host's ``libvirt_uri``. Without one,
    virsh connects where the client's config says (``uri_default``, else its own guess)."""
    problem = uri_problem(uri)
    if problem:
        raise ValueError(problem)
    return StringCommand("virsh") if uri is None else StringCommand("virsh -c", QuoteString(uri))


class LibvirtDomains(FactBase[dict]):
    """
    The domains libvirt knows (running or not), with their state and autostart, from
    ``virsh dominfo`` of each domain ``virsh list --all --name`` names; with ``uri``, of
    that libvirt (``virsh -c URI``). Two virsh processes whatever the number of domains:
    the list, then every ``dominfo`` in one batch (``dominfo --domain NAME; ...``), each
    byte of a name escaped with a backslash for virsh's own parser.

    .. code:: python

        {
            "g1": {"id": 1, "uuid": "...", "state": "running", "autostart": False,
                   "persistent": True},
        }

    Sample output (one block per domain)::

        Id:             1
        Name:           g1
        UUID:           6695eb01-f6a4-8304-79aa-97f2502e193f
        OS Type:        hvm
        State:          running
        ...
        Persistent:     yes
        Autostart:      disable
    """

    default = dict

    @override
    def requires_command(self, uri: str | None = None) -> str:
        return "virsh"

    @override
    def command(self, uri: str | None = None) -> StringCommand:
        # No pipefail in dash: keep virsh list's status by reading its output first. The
        # batch is one argument; a name's bytes, each after a backslash, are one word to
        # virsh whatever they are (blanks, quotes, ';'), and never reach the shell.
        return StringCommand(
            'names="$(LC_ALL=C',
            virsh(uri),
            'list --all --name)" && batch="$(printf "%s\\n" "$names" | LC_ALL=C sed'
            " -e '/^$/d' -e 's/./\\\\&/g' -e 's/^/dominfo --domain /' -e 's/$/;/'"
            ' | tr "\\n" " ")" && { test -z "$batch" || LC_ALL=C',
            virsh(uri),
            '"$batch" </dev/null; }',
        )

    @override
    def process(self, output: list[str]) -> dict:
        domains: dict = {}
        block: dict[str, str] = {}
        for line in [*output, ""]:
            if not line.strip():
                if block:
                    name, info = _domain(block)
                    domains[name] = info
                block = {}
                continue
            if line[0].isspace():  # a further line of the value above ("Messages:")
                continue
            key, sep, value = line.partition(":")
            if not sep:
                raise FactProcessError(f"unexpected line in virsh dominfo output: {line!r}")
            block[key.strip()] = value.strip()
        return domains


def _domain(block: dict[str, str]) -> tuple[str, dict]:
    try:
        name = block["Name"]
        autostart = {"enable": True, "disable": False}[block["Autostart"]]
        persistent = {"yes": True, "no": False}[block["Persistent"]]
        return name, {
            "id": None if block["Id"] == "-" else int(block["Id"]),
            "uuid": block["UUID"],
            "state": block["State"],
            "autostart": autostart,
            "persistent": persistent,
        }
    except (KeyError, ValueError) as error:
        raise FactProcessError(f"unexpected virsh dominfo output: {block}") from error


class LibvirtDomainXml(FactBase[str | None]):
    """
    The persistent (``--inactive``) XML definition of a libvirt domain, ``None`` when no
    domain has that name.

    Sample output::

        <domain type='kvm'>
          <name>g1</name>
          ...
        </domain>

    The command prints nothing for a missing domain, and fails when virsh fails (libvirt
    not running, for one): that is not taken for a missing domain.
    """

    @override
    def requires_command(self, domain: str, uri: str | None = None) -> str:
        return "virsh"

    @override
    def command(self, domain: str, uri: str | None = None) -> StringCommand:
        quoted = QuoteString(domain)
        return StringCommand(
            StringCommand('names="$(', virsh(uri), _separator=""),  # as captured: "$(virsh"
            'list --all --name)" && if printf "%s\\n" "$names" | grep -qxF -e',
            quoted,
            "; then",
            virsh(uri),
            "dumpxml --inactive --domain",
            quoted,
            "; fi",
        )

    @override
    def process(self, output: list[str]) -> str | None:
        text = "\n".join(output).strip()
        if not text:
            return None
        if not text.startswith("<domain") or not text.endswith("</domain>"):
            raise FactProcessError(f"virsh dumpxml did not print a domain: {text[:80]!r}")
        return text + "\n"
