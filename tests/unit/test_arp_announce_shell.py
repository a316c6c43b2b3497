"""net.arp_announce's commands run by a real ``sh``, with stand-ins for the guest's ``ip``
(its ``ip -o -4 addr show to ADDRESS`` lines) and ``arping`` (records its arguments and
answers as Habets' arping does to unsolicited ARP: no reply, exit 1): which interface
each address is announced on, and what is refused."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.harness import run_operation

ARPING = """#!/bin/sh
echo "$@" >> "$ARPING_LOG"
echo "3 packets transmitted, 0 packets received, 100% unanswered (0 extra)"
exit 1
"""


def _announce(tmp_path: Path, address: str, ip_lines: list[str]) -> tuple[int, str, str]:
    """Run the command announcing ``address`` where ``ip`` lists ``ip_lines`` for it."""
    (command,) = run_operation("net.arp_announce", {"args": [[address]]})[0]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    listing = "".join(f"{line}\n" for line in ip_lines)
    (bin_dir / "ip").write_text(f"#!/bin/sh\nprintf '%s' '{listing}'\n")
    (bin_dir / "arping").write_text(ARPING)
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    log = tmp_path / "arping.log"
    proc = subprocess.run(
        ["sh", "-c", command],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "ARPING_LOG": str(log)},
        capture_output=True,
        text=True,
        check=False,
    )
    return proc.returncode, log.read_text() if log.exists() else "", proc.stderr


ETH1 = "3: eth1    inet 10.0.0.10/24 brd 10.0.0.255 scope global eth1\\       valid_lft forever"
LO = "1: lo    inet 10.0.0.10/32 scope global lo\\       valid_lft forever preferred_lft forever"


@pytest.mark.parametrize(
    ("lines", "interface"),
    [([ETH1], "eth1"), ([LO, ETH1], "eth1"), ([ETH1, LO], "eth1")],
    ids=["one-nic", "also-on-lo-listed-first", "also-on-lo-listed-after"],
)
def test_an_address_is_announced_on_the_nic_that_holds_it_never_on_lo(
    tmp_path: Path, lines: list[str], interface: str
) -> None:
    rc, arping, stderr = _announce(tmp_path, "10.0.0.10", lines)
    assert rc == 0, stderr
    assert arping.split() == ["-U", "-c", "3", "-i", interface, "10.0.0.10"]


@pytest.mark.parametrize("lines", [[], [LO]], ids=["nowhere", "only-on-lo"])
def test_an_address_no_nic_holds_is_refused_and_not_announced(
    tmp_path: Path, lines: list[str]
) -> None:
    rc, arping, stderr = _announce(tmp_path, "10.0.0.10", lines)
    assert rc == 1
    assert "10.0.0.10 is not an address of this guest" in stderr
    assert arping == ""
