"""LibvirtDomains' command run by sh against real virsh (libvirt's test driver): every
domain, whatever its name, in one batch of ``dominfo`` (issue #11's speed: two virsh
processes per read, not one per domain), and a name never reaches the shell."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

from facts.libvirt import LibvirtDomains

pytestmark = pytest.mark.skipif(shutil.which("virsh") is None, reason="needs virsh")

# Names libvirt accepts (anything but '/'): blanks, virsh's own separator and quotes,
# shell syntax, a comment sign, UTF-8. "off" is defined but shut off.
NAMES = ("a b", "x;y", "q'\"\\z", "#h $(touch pwned) `touch pwned`", "ü-é", "-n")
NODE = """<node>
{domains}
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>off</name><memory>524288</memory><os><type>hvm</type></os>
    <test:runstate>5</test:runstate>
  </domain>
</node>
"""
DOMAIN = (
    "  <domain type='test'><name>{}</name><memory>524288</memory><os><type>hvm</type></os></domain>"
)


def read(uri: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    fact = LibvirtDomains()
    command = fact.command(uri=uri).get_raw_value()
    result = subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, cwd=cwd, check=False
    )
    return result, fact.process(result.stdout.splitlines())


def test_every_domain_whatever_its_name(tmp_path):
    node = tmp_path / "node.xml"
    domains = "\n".join(DOMAIN.format(escape(name)) for name in NAMES)
    node.write_text(NODE.format(domains=domains))
    result, found = read(f"test://{node}", tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(found) == sorted([*NAMES, "off"])
    assert {found[name]["state"] for name in NAMES} == {"running"}
    assert found["off"]["state"] == "shut off" and found["off"]["id"] is None
    assert all(info["persistent"] and not info["autostart"] for info in found.values())
    assert not (tmp_path / "pwned").exists(), "a domain's name reached the shell"


def test_no_domain_is_an_empty_read(tmp_path):
    node = tmp_path / "node.xml"
    node.write_text("<node/>\n")
    result, found = read(f"test://{node}", tmp_path)
    assert result.returncode == 0, result.stderr
    assert found == {}


def test_a_libvirt_that_does_not_answer_fails_the_read(tmp_path):
    result, found = read(f"test://{tmp_path}/missing.xml", tmp_path)
    assert result.returncode != 0 and found == {}
