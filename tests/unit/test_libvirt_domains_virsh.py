"""LibvirtDomains' command run by sh against real virsh (libvirt's test driver): every
domain, whatever its name, in one batch of ``dominfo`` (issue #11's speed: two virsh
processes per read, not one per domain), and a name never reaches the shell."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from facts.libvirt import LibvirtDomains

pytestmark = pytest.mark.skipif(shutil.which("virsh") is None, reason="needs virsh")

# The same node as LibvirtDomain's test: names libvirt accepts (anything but '/'), "off"
# shut off, "notes" with a blank line in its XML.
from tests.unit.test_libvirt_domain_virsh import NAMES, node_uri  # noqa: E402


def read(uri: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    fact = LibvirtDomains()
    command = fact.command(uri=uri).get_raw_value()
    result = subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, cwd=cwd, check=False
    )
    return result, fact.process(result.stdout.splitlines())


def test_every_domain_whatever_its_name(tmp_path):
    result, found = read(node_uri(tmp_path), tmp_path)
    assert result.returncode == 0, result.stderr
    # Not "1": its dominfo reads the domain whose id is 1 (virsh looks a name up as an id
    # first), a limit of this listing that LibvirtDomain, which libvirt.domain reads, checks.
    named = [name for name in NAMES if name != "1"]
    assert sorted(found) == sorted([*named, "off", "notes"])
    assert {found[name]["state"] for name in [*named, "notes"]} == {"running"}
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
