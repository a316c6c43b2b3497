"""``xen2kvm report`` and ``xen2kvm status`` end to end, with a local stand-in for ssh that
runs the remote command here: the journals and progress are real samples, the remote
command, its quoting and the ssh arguments are the real ones."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import pytest

from xen2kvm import cli_report, cli_status, fleet_access
from xen2kvm.errors import Xen2KvmError

DATA = Path(__file__).resolve().parents[1] / "data"

FAKE_SSH = """#!/bin/sh
printf '%s\\n' "$@" >> "$X2K_SSH_LOG"
for last; do :; done
case "$*" in *" -- unreachable "*) echo "connect: No route to host" >&2; exit 255 ;; esac
exec sh -c "$last"
"""


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A fleet whose KVM host keeps its state in a path that needs quoting, and the
    samples where x2k-journal puts them."""
    kvm_state = tmp_path / "kvm state;$(id)"
    dom0_state = tmp_path / "dom0"
    for state, guests in ((kvm_state, ["web1", "mail1"]), (dom0_state, ["legacy2"])):
        (state / "journal").mkdir(parents=True)
        (state / "progress").mkdir()
        for guest in guests:
            shutil.copy(DATA / "journals" / f"{guest}.jsonl", state / "journal")
    shutil.copy(DATA / "progress" / "rsync-midrun.out", kvm_state / "progress" / "mail1")
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(
        json.dumps(
            {
                "xen_hosts": {
                    "xen1": {"address": "198.51.100.10"},
                    "xen2": {"address": "198.51.100.11"},
                },
                "kvm_hosts": {
                    "kvm1": {"address": "198.51.100.20", "vg": "vg0", "state_dir": str(kvm_state)}
                },
                "guests": {
                    "web1": {"wave": 1, "xen_host": "xen1", "kvm_host": "kvm1",
                             "address": "198.51.100.101"},
                    "mail1": {"wave": 1, "xen_host": "xen1", "kvm_host": "kvm1",
                              "address": "198.51.100.103"},
                    "db9": {"wave": 2, "xen_host": "xen1", "kvm_host": "kvm1",
                            "address": "198.51.100.109"},
                    "legacy2": {"wave": 3, "xen_host": "xen1", "rehome_to": "xen2",
                                "address": "198.51.100.104"},
                },
            }
        )
    )  # fmt: skip
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(FAKE_SSH)
    (bin_dir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("X2K_SSH_LOG", str(tmp_path / "ssh.log"))
    monkeypatch.setattr(fleet_access, "DOM0_STATE", str(dom0_state))
    return fleet


def args(fleet: Path, *more: str, command: str = "report") -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    (cli_report if command == "report" else cli_status).add_parser(sub)
    return parser.parse_args([command, str(fleet), *more])


def test_report_writes_markdown_and_html(lab, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli_report.run(args(lab, "-o", str(out))) == 0
    markdown = (out / "report.md").read_text()
    assert "| web1 | kvm1 | moved |" in markdown
    assert "| mail1 | kvm1 | in cutover |" in markdown
    assert "| db9 | kvm1 | not started |" in markdown
    assert "| legacy2 | xen2 | moved |" in markdown
    assert 'id="row-legacy2"' in (out / "report.html").read_text()


def test_report_reaches_hosts_with_the_generated_ssh_config(lab, tmp_path):
    cli_report.run(args(lab, "--guest", "web1", "-o", str(tmp_path / "out")))
    logged = (tmp_path / "ssh.log").read_text().splitlines()
    assert logged[0] == "-F" and logged[1].endswith("/ssh_config")
    assert logged[logged.index("--") + 1] == "kvm1"


def test_wave_selects_guests(lab, tmp_path):
    cli_report.run(args(lab, "--wave", "2", "-o", str(tmp_path / "out")))
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "| db9 |" in markdown and "| web1 |" not in markdown


def test_an_unknown_guest_names_the_guests(lab):
    with pytest.raises(Xen2KvmError, match=r"--guest nope: not in .*guests: web1, mail1"):
        cli_report.run(args(lab, "--guest", "nope"))


def test_an_unreachable_destination_names_the_host(lab, monkeypatch):
    monkeypatch.setattr(
        fleet_access, "destination", lambda fleet, guest: ("unreachable", "/nowhere")
    )
    monkeypatch.setattr(cli_report, "destination", fleet_access.destination)
    with pytest.raises(cli_report.FetchError, match=r"^unreachable: .*No route to host"):
        cli_report.run(args(lab, "--guest", "web1"))


def test_status_table(lab, capsys):
    assert cli_status.run(args(lab, "--wave", "1", command="status")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "GUEST"
    mail1 = next(line for line in lines if line.startswith("mail1"))
    assert "cutover:/" in mail1 and "(46%)" in mail1 and "so far" in mail1


def test_status_json(lab, capsys):
    assert cli_status.run(args(lab, "--json", command="status")) == 0
    found = {s["guest"]: s for s in json.loads(capsys.readouterr().out)}
    assert found["mail1"]["copied"] == 16272192 and found["mail1"]["step"] == "cutover:/"
    assert found["db9"]["state"] == "not started"
    assert found["legacy2"]["destination"] == "xen2"
    assert found["web1"]["projected_downtime"] is None


def test_status_watch_stops_on_ctrl_c(lab, capsys, monkeypatch):
    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_status, "sleep", interrupt)
    assert cli_status.run(args(lab, "--watch", "5", command="status")) == 0
    assert "mail1" in capsys.readouterr().out
