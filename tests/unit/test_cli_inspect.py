"""``xen2kvm inspect``: run as an operator would, through a subprocess, and in-process."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from xen2kvm import cli_inspect

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "xen"


def xen2kvm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xen2kvm.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "warnings"),
    [("xen-tools-xm-kernel", 0), ("xl-keyvalue-comma", 3), ("xmexample.hvm", 2)],
)
def test_inspect_json_prints_the_expected_domain(name, warnings):
    result = xen2kvm("inspect", str(DATA / f"{name}.cfg"), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads((DATA / f"{name}.json").read_text())
    lines = result.stderr.splitlines()
    assert len(lines) == warnings
    assert all(line.startswith("xen2kvm: warning: ") for line in lines)


def test_inspect_warns_of_what_the_migration_refuses():
    result = xen2kvm("inspect", str(DATA / "xlexample.pvlinux.cfg"))
    assert result.returncode == 0
    assert result.stderr == (
        f"xen2kvm: warning: {DATA}/xlexample.pvlinux.cfg: line 44: key 'disk': xvda is a whole "
        "disk with a partition table of its own (as pygrub and HVM guests have): the migration "
        "moves one Xen disk per filesystem (xvda1, xvda2, ...) only (convert refuses it)\n"
    )


def test_inspect_json_is_indented_like_json_dumps_indent_2():
    result = xen2kvm("inspect", str(DATA / "xlexample.pvlinux.cfg"), "--json")
    assert result.stdout.startswith('{\n  "name": "example.pvlinux",\n  "type": "pv",')


def test_inspect_bad_file_exits_non_zero_naming_file_line_and_key(tmp_path):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text("name = 'bad'\nmemory = \"lots\"\n")
    result = xen2kvm("inspect", str(cfg), "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"xen2kvm: error: {cfg}: line 2: key 'memory': expected a whole number, got 'lots'\n"
    )


def test_inspect_python_xm_config_is_refused_cleanly():
    result = xen2kvm("inspect", str(DATA / "xmexample2.cfg"))
    assert result.returncode == 2
    assert "xmexample2.cfg: line 23: not an assignment" in result.stderr
    assert "Traceback" not in result.stderr


def test_inspect_help_names_the_config_positional_config():
    result = xen2kvm("inspect", "--help")
    assert result.returncode == 0
    assert "usage: xen2kvm inspect [-h] [--json] CONFIG" in result.stdout


def test_inspect_missing_file_is_a_clean_error(tmp_path):
    missing = tmp_path / "nope.cfg"
    result = xen2kvm("inspect", str(missing))
    assert result.returncode == 2
    assert result.stderr == f"xen2kvm: error: {missing}: cannot read: No such file or directory\n"
    assert "Traceback" not in result.stderr


def _run_in_process(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="xen2kvm")
    cli_inspect.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_inspect_summary_has_one_line_per_disk_and_vif(capsys):
    assert _run_in_process(["inspect", str(DATA / "multi-vif-routed.cfg")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:5] == [
        "name:   fw01",
        "type:   pv",
        "memory: 512 MiB (max 1024 MiB)",
        "vcpus:  2",
        "boot:   bootloader pygrub",
    ]
    assert [line for line in out if line.startswith("disk:")] == [
        "disk:   xvda   disk  /dev/vg0/fw01-root [phy, raw, rw]"
    ]
    vifs = [line for line in out if line.startswith("vif:")]
    assert len(vifs) == 3
    assert vifs[0] == (
        "vif:    mac=00:16:3e:0a:00:01 bridge=xenbr0 ip=198.51.100.2 198.51.100.3 vifname=fw01-wan"
    )


def test_inspect_summary_shows_empty_cdrom_and_default_vif(capsys):
    assert _run_in_process(["inspect", str(DATA / "xmexample.hvm.cfg")]) == 0
    out = capsys.readouterr().out
    assert "disk:   hdc    cdrom (empty) [auto, raw, ro]" in out
    assert "vif:    bridge=xenbr0" in out
    assert _run_in_process(["inspect", str(DATA / "xmexample1.cfg")]) == 0
    assert "vif:    (defaults)" in capsys.readouterr().out
