"""The controller install, as README.md says it: a fresh venv, a non-editable ``pip install``
of a checkout, then ``xen2kvm`` from anywhere.

The README's commands are run verbatim (read between its ``controller-install`` markers),
with HOME in a temporary directory and a copy of the checkout beside it. Offline: pip
gets no index (``PIP_NO_INDEX``) and builds without isolation; the fresh venv sees the
dependencies (and ``wheel``, for the venv's own setuptools) through a ``.pth`` file naming
this interpreter's site-packages, so nothing is downloaded.
"""

from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import setuptools

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MARKERS = re.compile(
    r"<!-- controller-install[^>]*-->\s*```sh\n(?P<body>.*?)```\s*<!-- /controller-install -->",
    re.S,
)
COPY_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "__pycache__", "build", "*.egg-info", ".pytest_cache", ".ruff_cache"
)


def readme_install_commands() -> list[str]:
    """The controller install's command lines, as README.md shows them."""
    found = MARKERS.findall(README.read_text())
    assert len(found) == 1, "README.md: one ```sh block between the controller-install markers"
    lines = [line.split(" #")[0].strip() for line in found[0].splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_the_readme_installs_into_a_venv_of_its_own():
    commands = readme_install_commands()
    assert commands[0].startswith("python3 -m venv ")
    assert any(" install " in c and "-e" not in c.split() for c in commands)


def test_the_wheel_lists_every_package():
    """pyproject.toml lists the packages (to map templates/ into the wheel): none is missing."""
    listed = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = setuptools.find_packages(str(ROOT), include=["xen2kvm", "xen2kvm.*"])
    assert set(found) <= set(listed["packages"])
    assert listed["package-dir"]["xen2kvm.templates"] == "templates"


def _offline_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV"))}
    env.update(
        HOME=str(home),
        PIP_NO_INDEX="1",
        PIP_NO_BUILD_ISOLATION="0",  # pip's inverted spelling: builds without isolation
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return env


def _share_dependencies(home: Path) -> None:
    """Each venv made under ``home`` sees this interpreter's site-packages (read only)."""
    for cfg in home.rglob("pyvenv.cfg"):
        for packages in cfg.parent.glob("lib/python*/site-packages"):
            paths = "\n".join(site.getsitepackages())
            (packages / "x2k-test-deps.pth").write_text(paths + "\n")


@pytest.mark.slow
def test_controller_install_gives_a_working_xen2kvm(tmp_path):
    try:
        import wheel  # noqa: F401  (the venv's setuptools builds the wheel with it)
    except ImportError:
        pytest.fail(
            "no 'wheel' here: reinstall the dev venv (./dev setup, or pip install -e '.[dev]')"
        )
    home, work, elsewhere = tmp_path / "home", tmp_path / "work", tmp_path / "elsewhere"
    home.mkdir()
    shutil.copytree(ROOT, work / "xen2kvm", ignore=COPY_IGNORE, symlinks=True)
    env = _offline_env(home)
    for command in readme_install_commands():
        result = subprocess.run(
            ["bash", "-c", command], cwd=work, env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        _share_dependencies(home)

    (xen2kvm,) = home.rglob("bin/xen2kvm")
    (elsewhere / "inventory").mkdir(parents=True)
    shutil.copy(ROOT / "inventory" / "prod.yml", elsewhere / "inventory")
    config = elsewhere / "web01.cfg"
    config.write_text("name = 'web01'\nmemory = 512\ndisk = [ 'phy:/dev/vg0/web01,xvda1,w' ]\n")

    def run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [str(xen2kvm), *args], cwd=elsewhere, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, f"xen2kvm {' '.join(args)}\n{done.stderr}"
        return done

    assert run("--version").stdout.startswith("xen2kvm ")
    assert "www.example.net (wave 1)" in run("plan", "inventory/prod.yml").stdout
    assert "<source dev='/dev/vg0/web01'/>" in run("convert", str(config)).stdout  # templates
    for command in ("inspect", "report", "status"):
        run(command, "--help")

    python = xen2kvm.parent / "python"
    # The deploy runs from the checkout with this venv: its inventory loads there.
    inventory = subprocess.run(
        [str(python), "-m", "pyinfra", "inventory/prod.py", "debug-inventory"],
        cwd=work / "xen2kvm",
        env=env,
        capture_output=True,
        text=True,
    )
    assert inventory.returncode == 0, inventory.stderr
    assert "move_www_example_net" in inventory.stdout + inventory.stderr

    where = subprocess.run(
        [str(python), "-c", "import xen2kvm.render as r; print(r.__file__, r.TEMPLATES)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    venv = xen2kvm.parent.parent
    assert all(Path(path).is_relative_to(venv) for path in where), where  # not the checkout's
    assert sys.prefix not in where[0]
