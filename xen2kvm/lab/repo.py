"""The lab's local apt repository: what the migration's prepare phase installs in guests.

The lab has no uplink, so the packages a guest will need (kernel, grub, lvm2 ...) are
downloaded once at build time, on the outer machine, from inside each guest tree (so only
what the guest does not already have is fetched), kept as a flat repo per Debian suite
and arch under ``cache/repo/<name>`` (``repo_name``: ``amd64`` for bookworm, as it always
was, ``trixie-amd64`` for mail1's) and served over HTTP on ``198.51.100.1:3142`` from
``<prefix>-net``. Guests use ``deb [trusted=yes] http://198.51.100.1:3142/<name> ./``.
A repo is filled whole with its guest tree (``images.build_tree``): a rebuilt tree empties
it first, so no package of a stale cache is left beside the new ones.
"""

from __future__ import annotations

import gzip
import hashlib
import shutil
import subprocess
import sys
from email.utils import formatdate
from pathlib import Path

from xen2kvm.planner import kernel_package

from .config import LAB_GATEWAY, LabConfig
from .containers import kill_ours
from .fleet import DEFAULT_SUITE, load
from .util import in_netns, read_pid, run

REPO_PORT = 3142
# What the migration's prepare phase installs in a guest besides its kernel.
PREPARE_PACKAGES = ("grub-pc", "lvm2", "initramfs-tools", "udev", "kmod")


def repo_packages(suite: str, arch: str) -> tuple[str, ...]:
    """What a repo of ``suite`` and ``arch`` holds: the kernel each lab guest of that
    release installs (lab.yml's ``kernel``, else the arch's generic one) and
    PREPARE_PACKAGES; bookworm's amd64 also linux-image-amd64, the kernel whose modules
    the dom0 xen2 gets (``lab.modules``)."""
    kernels = {
        kernel_package(g.arch, g.fleet.kernel)
        for g in load().guests
        if (g.suite, g.arch) == (suite, arch)
    }
    if not kernels or (suite, arch) == (DEFAULT_SUITE, "amd64"):
        kernels.add(kernel_package(arch))
    return (*sorted(kernels), *PREPARE_PACKAGES)


def repo_name(suite: str, arch: str) -> str:
    """The repo's directory (and URL path) for a suite's arch: bookworm's is the arch."""
    return arch if suite == DEFAULT_SUITE else f"{suite}-{arch}"


def repo_url(name: str) -> str:
    return f"http://{LAB_GATEWAY}:{REPO_PORT}/{name}"


def sources_line(suite: str, arch: str) -> str:
    return f"deb [trusted=yes] {repo_url(repo_name(suite, arch))} ./\n"


def repo_dir(cfg: LabConfig, name: str | None = None) -> Path:
    """The served directory, or one repo in it (``repo_name``)."""
    base = cfg.cache / "repo"
    return base / name if name else base


def download_into_repo(cfg: LabConfig, tree: Path, suite: str, arch: str) -> None:
    """Fetch ``repo_packages(suite, arch)`` and their missing dependencies with the tree's own apt
    (of ``suite``) into that suite's repo, which holds nothing else afterwards."""
    shutil.copy("/etc/resolv.conf", tree / "etc/resolv.conf")
    chroot = ["chroot", str(tree), "env", "DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"]
    run([*chroot, "apt-get", "clean"])  # debootstrap leaves the base system's .debs there
    run([*chroot, "apt-get", "-q", "update"], capture=True)
    run(
        [
            *chroot,
            "apt-get",
            "-q",
            "-y",
            "--download-only",
            "--no-install-recommends",
            "install",
            *repo_packages(suite, arch),
        ],
        capture=True,
    )
    dest = repo_dir(cfg, repo_name(suite, arch))
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    for deb in (tree / "var/cache/apt/archives").glob("*.deb"):
        shutil.move(str(deb), dest / deb.name)
    run([*chroot, "apt-get", "clean"])
    for lst in (tree / "var/lib/apt/lists").glob("*_*"):
        lst.unlink()
    index(dest, arch)


def index(dest: Path, arch: str) -> None:
    """Write Packages, Packages.gz and a Release for a flat repo."""
    packages = subprocess.run(
        ["dpkg-scanpackages", "--multiversion", ".", "/dev/null"],
        cwd=dest,
        check=True,
        capture_output=True,
    ).stdout
    (dest / "Packages").write_bytes(packages)
    (dest / "Packages.gz").write_bytes(gzip.compress(packages, mtime=0))
    lines = [
        "Origin: xen2kvm-lab",
        "Label: xen2kvm-lab",
        f"Architectures: {arch}",
        f"Date: {formatdate(usegmt=True)}",
        "SHA256:",
    ]
    for name in ("Packages", "Packages.gz"):
        data = (dest / name).read_bytes()
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}")
    (dest / "Release").write_text("\n".join(lines) + "\n")


def _pidfile(cfg: LabConfig) -> Path:
    return cfg.pids / "apt-repo.pid"


def serve(cfg: LabConfig) -> int:
    """Start the HTTP server for the repo inside ``<prefix>-net`` (idempotent); its pid."""
    pid = read_pid(_pidfile(cfg))
    if pid is not None:
        return pid
    cfg.pids.mkdir(parents=True, exist_ok=True)
    log = cfg.run / "apt-repo.log"
    cmd = in_netns(
        cfg.netns,
        [
            sys.executable,
            "-m",
            "http.server",
            str(REPO_PORT),
            "--bind",
            LAB_GATEWAY,
            "--directory",
            str(repo_dir(cfg)),
        ],
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    _pidfile(cfg).write_text(f"{proc.pid}\n")
    return proc.pid


def server_pid(cfg: LabConfig) -> int | None:
    return read_pid(_pidfile(cfg))


def stop(cfg: LabConfig) -> None:
    kill_ours(cfg, _pidfile(cfg))
