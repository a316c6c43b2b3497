"""``xen2kvm lab reboot``'s pure parts: which domains xendomains creates from a dom0's
/etc/xen/auto, read inside the dom0's root; and a reboot boots the dom0 from its disk as
it is (nothing of its upper dir rewritten, /tmp emptied)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xen2kvm.lab import dom0, xendomains
from xen2kvm.lab.config import LabConfig
from xen2kvm.lab.fleet import Host
from xen2kvm.lab.xendomains import Start, autostart


def config(name: str, memory: int = 512, vcpus: int = 1) -> str:
    return f"name = '{name}'\nmemory = '{memory}'\nvcpus = '{vcpus}'\ndisk = []\n"


def test_autostart_creates_each_linked_config_in_name_order():
    starts, problems = autostart(
        {"web1.cfg": config("web1", 1024, 2), "mail1.cfg": config("mail1")}
    )
    assert starts == [Start("mail1.cfg", "mail1", 512, 1), Start("web1.cfg", "web1", 1024, 2)]
    assert problems == []


def test_autostart_of_an_empty_directory_starts_nothing():
    assert autostart({}) == ([], [])


def test_autostart_skips_hidden_names_as_the_glob_does():
    starts, problems = autostart({".web1.cfg.swp": config("web1"), "mail1.cfg": config("mail1")})
    assert [s.name for s in starts] == ["mail1"]
    assert problems == []


def test_autostart_reports_a_dangling_link():
    starts, problems = autostart({"web1.cfg": None})
    assert starts == []
    assert problems == ["/etc/xen/auto/web1.cfg: cannot be read (a dangling link?)"]


def test_autostart_reports_a_config_it_cannot_parse():
    starts, problems = autostart({"web1.cfg": "name = \n"})
    assert starts == []
    assert len(problems) == 1 and problems[0].startswith("/etc/xen/auto/web1.cfg")


def test_autostart_reports_a_config_without_a_name():
    starts, problems = autostart({"web1.cfg": "memory = 512\n"})
    assert (starts, problems) == ([], ["/etc/xen/auto/web1.cfg: has no name = '...'"])


def test_autostart_creates_a_domain_named_twice_once():
    starts, _ = autostart({"a.cfg": config("web1"), "b.cfg": config("web1")})
    assert [s.entry for s in starts] == ["a.cfg"]


def test_read_auto_dir_follows_absolute_links_inside_the_dom0_root(tmp_path: Path):
    root = tmp_path / "root"
    (root / "etc/xen/auto").mkdir(parents=True)
    (root / "etc/xen/web1.cfg").write_text(config("web1"))
    (root / "etc/xen/auto/web1.cfg").symlink_to("/etc/xen/web1.cfg")
    (root / "etc/xen/auto/mail1.cfg").symlink_to("../mail1.cfg")  # relative, and dangling
    (root / "etc/xen/auto/legacy1.cfg").write_text(config("legacy1"))  # a copy, not a link
    assert xendomains.read_auto_dir(root) == {
        "web1.cfg": config("web1"),
        "mail1.cfg": None,
        "legacy1.cfg": config("legacy1"),
    }


def test_read_auto_dir_without_the_directory_is_empty(tmp_path: Path):
    assert xendomains.read_auto_dir(tmp_path) == {}


@pytest.fixture
def cfg(tmp_path: Path) -> LabConfig:
    return LabConfig(root=tmp_path, prefix="x2t")


def test_boot_spec_boots_the_disk_as_the_dom0_left_it(cfg, monkeypatch):
    upper = cfg.run / "xen1/upper"
    (upper / "root/.ssh").mkdir(parents=True)
    (upper / "root/.ssh/authorized_keys").write_text("lab key\nmigration key\n")
    (upper / "etc/xen/auto").mkdir(parents=True)  # its autostart links removed
    monkeypatch.setattr(dom0, "lv_devnodes", lambda *args: [])
    spec = dom0.boot_spec(cfg, None, Host("xen1", "198.51.100.10", "xen"), cfg.run / "xen")
    assert (upper / "root/.ssh/authorized_keys").read_text() == "lab key\nmigration key\n"
    assert list((upper / "etc/xen/auto").iterdir()) == []
    assert spec.mounts[0].options.split(",")[1] == f"upperdir={upper}"
    assert spec.root == str(dom0.root(cfg, "xen1"))


def test_boot_spec_refuses_a_dom0_without_a_disk(cfg):
    with pytest.raises(RuntimeError, match="lab up"):
        dom0.boot_spec(cfg, None, Host("xen1", "198.51.100.10", "xen"), cfg.run / "xen")


def test_clean_tmp_empties_the_dom0s_tmp_only(cfg):
    upper = cfg.run / "xen1/upper"
    (upper / "tmp/dir").mkdir(parents=True)
    (upper / "tmp/dir/file").write_text("x")
    (upper / "tmp/file").write_text("x")
    (upper / "tmp/link").symlink_to(upper / "root")
    (upper / "root").mkdir()
    (upper / "root/kept").write_text("x")
    dom0.clean_tmp(cfg, "xen1")
    assert list((upper / "tmp").iterdir()) == []
    assert (upper / "root/kept").exists()
