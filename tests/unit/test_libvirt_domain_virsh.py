"""LibvirtDomain's command run by sh against real virsh (libvirt's test driver): one
domain's info and XML in one virsh process (libvirt.domain reads it inside a guest's
downtime), a domain missing only when virsh's listing lacks it, and a name never reaches
the shell."""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from pyinfra.api.exceptions import FactProcessError

from facts.libvirt import LibvirtDomain, LibvirtDomains

pytestmark = pytest.mark.skipif(shutil.which("virsh") is None, reason="needs virsh")

# Names libvirt accepts (anything but '/'): blanks, virsh's own separator and quotes,
# shell syntax, a comment sign, UTF-8, options. "off" is shut off; "notes" has a blank
# line in its XML. The first domain runs with the id 1: "1" is another domain's name.
NAMES = ("a b", "x;y", "q'\"\\z", "#h $(touch pwned) `touch pwned`", "ü-é", "-n", "--x", "1")
NODE = """<node>
{domains}
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>off</name><memory>524288</memory><os><type>hvm</type></os>
    <test:runstate>5</test:runstate>
  </domain>
  <domain type='test'>
    <name>notes</name><description>one

two</description><memory>524288</memory><os><type>hvm</type></os>
  </domain>
</node>
"""
DOMAIN = (
    "  <domain type='test'><name>{}</name><uuid>{}</uuid><memory>524288</memory>"
    "<os><type>hvm</type></os></domain>"
)


def uuid(name: str) -> str:
    """The UUID each domain is given (else the test driver draws one a virsh process)."""
    return f"00000000-0000-4000-8000-{NAMES.index(name):012d}"


@pytest.fixture()
def uri(tmp_path) -> str:
    return node_uri(tmp_path)


def node_uri(tmp_path: Path) -> str:
    """The test driver's URI for a node of NAMES, "off" and "notes", kept in ``tmp_path``."""
    node = tmp_path / "node.xml"
    domains = "\n".join(DOMAIN.format(escape(name), uuid(name)) for name in NAMES)
    node.write_text(NODE.format(domains=domains))
    return f"test://{node}"


def run(fact, uri: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess[str]:
    command = fact.command(uri=uri, **kwargs).get_raw_value()
    return subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, cwd=cwd, check=False
    )


def read(domain: str, uri: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], object]:
    fact = LibvirtDomain()
    result = run(fact, uri, cwd, domain=domain)
    assert result.returncode == 0, result.stderr
    return result, fact.process(result.stdout.splitlines())


def test_one_virsh_process():
    command = LibvirtDomain().command("web1", uri="qemu:///system").get_raw_value()
    assert command.count("virsh") == 1


@pytest.mark.parametrize("name", [n for n in NAMES if n != "1"])
def test_a_domain_whatever_its_name(name, uri, tmp_path):
    _, found = read(name, uri, tmp_path)
    domains = LibvirtDomains()
    listed = domains.process(run(domains, uri, tmp_path).stdout.splitlines())
    assert found == {"xml": found["xml"], **listed[name]}
    assert found["uuid"] == uuid(name) and found["state"] == "running"
    assert ET.fromstring(found["xml"]).findtext("name") == name
    assert found["xml"].startswith("<domain") and found["xml"].endswith("</domain>\n")
    assert not (tmp_path / "pwned").exists(), "a domain's name reached the shell"


def test_a_shut_off_domain(uri, tmp_path):
    _, found = read("off", uri, tmp_path)
    assert (found["state"], found["id"], found["autostart"]) == ("shut off", None, False)


def test_a_blank_line_in_the_xml_stays(uri, tmp_path):
    _, found = read("notes", uri, tmp_path)
    assert "<description>one\n\ntwo</description>" in found["xml"]


@pytest.mark.parametrize("name", ["nope", "a", "x", "#h", "g1; reboot", "$(touch pwned)"])
def test_a_missing_domain_is_none(name, uri, tmp_path):
    result, found = read(name, uri, tmp_path)
    assert found is None
    assert "failed to get domain" in result.stderr  # dominfo and dumpxml failed, the listing not
    assert not (tmp_path / "pwned").exists(), "a domain's name reached the shell"


def test_a_name_virsh_takes_for_an_id_fails_the_read(uri, tmp_path):
    fact = LibvirtDomain()
    result = run(fact, uri, tmp_path, domain="1")
    with pytest.raises(FactProcessError, match="rename the domain '1'"):
        fact.process(result.stdout.splitlines())


def test_a_libvirt_that_does_not_answer_fails_the_read(tmp_path):
    result = run(LibvirtDomain(), f"test://{tmp_path}/missing.xml", tmp_path, domain="g1")
    assert result.returncode != 0 and result.stdout == ""


def test_a_listed_domain_virsh_could_not_read_fails_the_read():
    fact = LibvirtDomain()
    fact.command("g1")
    # dominfo and dumpxml failed (each its blank line), then the listing named g1
    with pytest.raises(FactProcessError, match="defined meanwhile"):
        fact.process(["", "", "g1", ""])
