"""
Facts about the libvirt domains of a KVM host.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

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
        return dict(_domain(block) for block in _dominfo_blocks(output))


def _dominfo_blocks(output: list[str]) -> list[dict[str, str]]:
    """The ``Key: value`` blocks of ``virsh dominfo`` output, one a domain."""
    blocks: list[dict[str, str]] = []
    block: dict[str, str] = {}
    for line in [*output, ""]:
        if not line.strip():
            if block:
                blocks.append(block)
            block = {}
            continue
        if line[0].isspace():  # a further line of the value above ("Messages:")
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise FactProcessError(f"unexpected line in virsh dominfo output: {line!r}")
        block[key.strip()] = value.strip()
    return blocks


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


class LibvirtDomain(FactBase[dict | None]):
    """
    One libvirt domain: its persistent (``--inactive``) XML definition (ending with a
    newline) and its info as ``LibvirtDomains`` gives it, ``None`` when no domain has that
    name; with ``uri``, of that libvirt. One virsh process, since ``libvirt.domain`` reads
    it inside a guest's downtime: the batch ``dominfo --domain NAME; dumpxml --inactive
    --domain NAME; list --all --name``, the name escaped with backslashes for virsh's own
    parser.

    .. code:: python

        {"xml": "<domain type='kvm'> ... </domain>", "id": 1, "uuid": "...",
         "state": "running", "autostart": False, "persistent": True}

    virsh runs each command of a batch whatever the one before did, ends each with a blank
    line (a failed one with that alone) and exits with the last one's status. The listing
    comes last: the command fails when it fails (libvirt not running, for one), which is
    never taken for a missing domain. A domain it does not list is missing, whatever
    dominfo said; one it lists that dominfo or dumpxml could not read fails the fact.

    Sample output (dominfo, dumpxml, then the listing)::

        Id:             1
        Name:           g1
        UUID:           6695eb01-f6a4-8304-79aa-97f2502e193f
        ...
        Persistent:     yes
        Autostart:      disable

        <domain type='kvm'>
          <name>g1</name>
          ...
        </domain>

        g1
        g2

    """

    @override
    def requires_command(self, domain: str, uri: str | None = None) -> str:
        return "virsh"

    @override
    def command(self, domain: str, uri: str | None = None) -> StringCommand:
        self.domain = domain  # for process(), as pyinfra's own facts keep their arguments
        # One word to virsh whatever it holds: a backslash before each character but ASCII
        # letters and digits (blanks, quotes, ';', '#'); QuoteString keeps it from the shell.
        name = re.sub(r"[^A-Za-z0-9]", lambda char: f"\\{char[0]}", domain)
        batch = f"dominfo --domain {name}; dumpxml --inactive --domain {name}; list --all --name"
        return StringCommand("LC_ALL=C", virsh(uri), QuoteString(batch), "</dev/null")

    @override
    def process(self, output: list[str]) -> dict | None:
        # dominfo, "", dumpxml, "", names, "": no name is empty, the XML may hold a blank line
        blanks = [i for i, line in enumerate(output) if line == ""]
        if len(blanks) < 3 or blanks[-1] != len(output) - 1:
            raise FactProcessError(f"virsh did not end with its listing: {output[-3:]!r}")
        if self.domain not in output[blanks[-2] + 1 : -1]:
            return None
        blocks = _dominfo_blocks(output[: blanks[0]])
        xml = "\n".join(output[blanks[0] + 1 : blanks[-2]]).strip()
        if len(blocks) != 1 or not xml.startswith("<domain"):
            raise FactProcessError(
                f"domain {self.domain} is listed but virsh could not read its info and XML "
                "(defined meanwhile?): read it again"
            )
        info = _domain(blocks[0])[1]
        try:
            root = ET.fromstring(xml)  # noqa: S314 (virsh on the host we manage)
        except ET.ParseError as error:
            raise FactProcessError(f"virsh dumpxml did not print XML: {error}") from None
        if root.findtext("name") != self.domain:  # virsh looks a name up as an id or UUID first
            raise FactProcessError(
                f"virsh took the domain name {self.domain!r} for the id or UUID of the domain "
                f"{root.findtext('name')!r}: rename the domain {self.domain!r}"
            )
        if (root.findtext("uuid") or "").strip().lower() != info["uuid"].lower():
            raise FactProcessError(
                f"virsh dominfo and dumpxml showed two domains {self.domain!r} (redefined "
                "meanwhile?): read it again"
            )
        return {"xml": xml + "\n", **info}
