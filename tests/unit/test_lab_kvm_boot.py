"""The lab's kvm1 is started again when its kernel panics while booting (multi-threaded
TCG's cross-vcpu code patching race, ``xen2kvm.lab.kvmhost.BOOT_ATTEMPTS``): its boot
steps replaced by recorders, the serial log written as a panicked boot writes it."""

from __future__ import annotations

import pytest

from xen2kvm.lab import kvmhost
from xen2kvm.lab.config import LabConfig

PANICKED = "[   27.529245] Kernel panic - not syncing: Fatal exception in interrupt\n"


@pytest.fixture
def booting(monkeypatch, tmp_path):
    """kvm1's up() with its boot replaced: each start writes the serial log the next boot
    in ``boots`` writes (a panic, or nothing), and SSH answers once one did not panic."""
    cfg = LabConfig(root=tmp_path, prefix="x2k")
    kvmhost.run_dir(cfg).mkdir(parents=True)
    done: dict[str, list] = {"starts": [], "kills": [], "boots": []}
    running: list[bool] = [False]

    def start(_cfg):
        log = done["boots"][len(done["starts"])]
        done["starts"].append(log)
        kvmhost.serial_log(cfg).write_text(log)
        running[0] = True

    def wait(_cfg, _timeout):
        if kvmhost.PANIC in kvmhost.serial_log(cfg).read_text():
            raise kvmhost.Panicked("kvm1: its kernel panicked while booting")

    def kill(_pidfile, wait=0):
        done["kills"].append(wait)
        running[0] = False

    monkeypatch.setattr(kvmhost, "build", lambda _cfg: None)
    monkeypatch.setattr(kvmhost, "ensure_net", lambda _cfg: None)
    monkeypatch.setattr(kvmhost.outer_libvirt, "start", lambda *_args: None)
    monkeypatch.setattr(kvmhost, "read_pid", lambda _path: 1 if running[0] else None)
    monkeypatch.setattr(kvmhost, "_start", start)
    monkeypatch.setattr(kvmhost, "_wait_ssh", wait)
    monkeypatch.setattr(kvmhost, "kill_pid", kill)
    return cfg, done


def test_a_boot_that_panics_is_started_again_and_its_log_kept(booting):
    cfg, done = booting
    done["boots"] = [PANICKED, "login:\n"]
    kvmhost.up(cfg)
    assert len(done["starts"]) == 2 and len(done["kills"]) == 1
    kept = kvmhost.run_dir(cfg) / "kvm1-serial.panic1.log"
    assert kept.read_text() == PANICKED
    assert kvmhost.serial_log(cfg).read_text() == "login:\n"


def test_it_gives_up_after_its_attempts(booting):
    cfg, done = booting
    done["boots"] = [PANICKED] * kvmhost.BOOT_ATTEMPTS
    with pytest.raises(kvmhost.Panicked):
        kvmhost.up(cfg)
    assert len(done["starts"]) == kvmhost.BOOT_ATTEMPTS
    assert len(done["kills"]) == kvmhost.BOOT_ATTEMPTS - 1
