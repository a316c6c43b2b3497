"""``xen2kvm`` itself and ``./dev``: help, version, option texts, usage errors."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from xen2kvm import __version__
from xen2kvm.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
XEN2KVM = str(Path(sys.executable).parent / "xen2kvm")


def run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def subparsers() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_help_says_migrations_run_through_pyinfra():
    result = run(XEN2KVM, "--help")
    assert result.returncode == 0
    assert "pyinfra INVENTORY deploy.py" in result.stdout
    assert "it changes no host" in result.stdout


def test_version():
    result = run(XEN2KVM, "--version")
    assert (result.returncode, result.stdout) == (0, f"xen2kvm {__version__}\n")


def test_no_command_is_a_usage_error():
    result = run(XEN2KVM)
    assert result.returncode == 2
    assert "error: the following arguments are required: COMMAND" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_help_has_no_raw_markup(command):
    result = run(XEN2KVM, command, "--help")
    assert result.returncode == 0
    assert "``" not in result.stdout
    assert "usage: xen2kvm " + command in result.stdout


@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_the_config_positional_is_config_everywhere(command):
    positionals = [a for a in subparsers()[command]._actions if not a.option_strings]
    assert [a.metavar for a in positionals] == ["CONFIG"]


@pytest.mark.parametrize("command", ["inspect", "convert"])
def test_every_option_has_help_text(command):
    for action in subparsers()[command]._actions:
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"


@pytest.mark.parametrize(
    ("option", "unit"),
    [("--memory", "512M"), ("--memory", "bare number is MiB"), ("--vcpus", "1 to 4096")],
)
def test_sized_options_say_their_unit(option, unit):
    action = next(a for a in subparsers()["convert"]._actions if option in a.option_strings)
    assert unit in action.help


# --------------------------------------------------------------------------- ./dev


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_dev_help_is_a_clean_usage(flag):
    result = run("./dev", flag)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: ./dev COMMAND [ARGS...]\n")
    assert "set -euo" not in result.stdout
    assert all(cmd in result.stdout for cmd in ("lab-demo", "test", "setup", "lint"))
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "first"),
    [((), "usage: ./dev COMMAND [ARGS...]"), (("bogus",), "./dev: unknown command 'bogus'")],
)
def test_dev_without_a_known_command_prints_usage_and_fails(args, first):
    result = run("./dev", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines()[0] == first
    assert "set -euo" not in result.stderr
