"""The lab's guest trees and apt repos, one per Debian suite (no lab needed for these)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xen2kvm.lab import fleet, images, repo
from xen2kvm.lab.config import LabConfig

LAB_YML = Path(__file__).resolve().parents[2] / "inventory" / "lab.yml"
LAB = fleet.load(LAB_YML)


@pytest.mark.parametrize(
    ("suite", "arch", "line"),
    [
        ("bookworm", "amd64", "deb [trusted=yes] http://198.51.100.1:3142/amd64 ./\n"),
        ("bookworm", "i386", "deb [trusted=yes] http://198.51.100.1:3142/i386 ./\n"),
        ("trixie", "amd64", "deb [trusted=yes] http://198.51.100.1:3142/trixie-amd64 ./\n"),
    ],
)
def test_a_guest_s_sources_line_names_its_suite_s_repo(suite, arch, line):
    """bookworm's repos keep the path they always had (a cached lab's stays valid)."""
    assert repo.sources_line(suite, arch) == line


@pytest.mark.parametrize(
    ("guest", "tree"),
    [
        ("web1", "guest-amd64"),
        ("legacy1", "guest-bullseye-i386"),
        ("mail1", "guest-trixie-amd64"),
        ("legacy2", "guest-bullseye-i386"),
    ],
)
def test_each_guest_is_built_from_its_suite_s_tree(guest, tree):
    spec = LAB.guest(guest)
    assert images.guest_tree(spec) == tree
    assert images.TREES[tree][:2] == (spec.suite, spec.arch)


def test_a_guest_on_a_suite_with_no_tree_is_refused(monkeypatch):
    monkeypatch.setitem(fleet.SUITES, "web1", "forky")
    with pytest.raises(KeyError, match="web1: no tree guest-forky-amd64"):
        images.guest_tree(LAB.guest("web1"))


def test_a_tree_s_stamp_changes_with_its_suite(monkeypatch):
    """A cached tree of another suite is stale: built again, its repo with it."""
    before = images.tree_stamp("guest-trixie-amd64")
    _, arch, extra = images.TREES["guest-trixie-amd64"]
    monkeypatch.setitem(images.TREES, "guest-trixie-amd64", ("forky", arch, extra))
    assert images.tree_stamp("guest-trixie-amd64") != before


def test_the_trees_stamps_differ():
    stamps = {images.tree_stamp(name) for name in images.TREES}
    assert len(stamps) == len(images.TREES)


def test_a_refilled_repo_keeps_no_package_of_the_stale_one(tmp_path, monkeypatch):
    """download_into_repo moves what the tree's apt fetched into an emptied repo."""
    cfg = LabConfig(root=tmp_path / "lab", prefix="x2kt")
    stale = repo.repo_dir(cfg, "trixie-amd64") / "lvm2_2.03.16-2_amd64.deb"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    tree = tmp_path / "tree"
    archives = tree / "var/cache/apt/archives"
    archives.mkdir(parents=True)
    (tree / "etc").mkdir()
    (tree / "var/lib/apt/lists").mkdir(parents=True)
    (archives / "lvm2_2.03.31-2_amd64.deb").write_bytes(b"new")
    monkeypatch.setattr(repo, "run", lambda *args, **kwargs: None)  # the tree's apt-get
    indexed = []
    monkeypatch.setattr(repo, "index", lambda dest, arch: indexed.append((dest, arch)))
    repo.download_into_repo(cfg, tree, "trixie", "amd64")
    dest = repo.repo_dir(cfg, "trixie-amd64")
    assert sorted(p.name for p in dest.iterdir()) == ["lvm2_2.03.31-2_amd64.deb"]
    assert indexed == [(dest, "amd64")]
