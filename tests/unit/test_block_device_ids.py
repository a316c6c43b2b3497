"""``facts.disk.BlockDeviceIds``, the device numbers of a dom0's paths read in one command
inside a cutover's downtime, its command run here with the real ``sh`` and ``stat``: on
device nodes made in tmp_path (``mknod``: root), a link, a file, a directory, a missing
path, and paths as a Xen config may name them (blanks, ``;``, ``$(...)``, quotes, a
newline).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from facts.disk import BlockDeviceIds

HOSTILE = ["web 1", "web1;touch {marker}", "$(touch {marker})", "`touch {marker}`", "it's", '"q"']


def numbers(devices: list[str]) -> dict:
    """The fact as it runs on the dom0, here."""
    fact = BlockDeviceIds()
    command = fact.command(devices=tuple(devices)).get_raw_value()
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    return fact.process(result.stdout.splitlines())


def node(path: Path, major: int, minor: int) -> str:
    """A block device node of that number at ``path``."""
    try:
        os.mknod(path, stat.S_IFBLK | 0o600, os.makedev(major, minor))
    except PermissionError:
        pytest.skip("mknod needs root")
    return str(path)


def test_each_path_gets_its_own_number_or_none(tmp_path):
    lv = node(tmp_path / "xenvg-web1--root", 254, 3)
    swap = node(tmp_path / "xenvg-web1--swap", 254, 0x1A)
    (tmp_path / "web1-root").symlink_to(lv)
    (tmp_path / "old.img").write_text("")
    devices = [
        lv, str(tmp_path / "web1-root"), swap, str(tmp_path / "old.img"),
        str(tmp_path / "gone"), str(tmp_path),
    ]  # fmt: skip
    assert numbers(devices) == {
        lv: "fe:3",
        str(tmp_path / "web1-root"): "fe:3",  # a link: the device it names
        swap: "fe:1a",  # in hex, as stat prints it
        str(tmp_path / "old.img"): None,
        str(tmp_path / "gone"): None,
        str(tmp_path): None,
    }


def test_a_real_block_device_has_the_number_the_kernel_gives():
    loop = Path("/dev/loop0")
    if not loop.is_block_device():
        pytest.skip("no /dev/loop0 here")
    rdev = loop.stat().st_rdev
    assert numbers([str(loop)]) == {str(loop): f"{os.major(rdev):x}:{os.minor(rdev):x}"}


def test_paths_are_quoted_whatever_they_hold(tmp_path):
    marker = tmp_path / "ran"
    names = [name.format(marker=marker) for name in HOSTILE]
    devices = [node(tmp_path / name.replace("/", "_"), 254, i) for i, name in enumerate(names)]
    devices.append(str(tmp_path / "not here; touch x"))
    found = numbers(devices)
    assert not marker.exists(), "a path ran as shell code"
    assert found == {
        **{device: f"fe:{i:x}" for i, device in enumerate(devices[:-1])},
        devices[-1]: None,
    }


def test_a_newline_in_a_path_answers_for_no_other_path(tmp_path):
    # Were paths printed back, this file's name would read as a second line "1 fe:3".
    forger = tmp_path / "web1.img\n1 fe:3"
    forger.write_text("")
    missing = str(tmp_path / "web1-root")
    assert numbers([str(forger), missing]) == {str(forger): None, missing: None}


def test_no_paths_no_numbers():
    assert numbers([]) == {}
