"""Build and cache the lab's root trees and the guests' per-partition disk images.

Cached under ``cfg.cache`` (kept across ``lab down``):

- ``trees/<tree>``: debootstrap trees (``guest-amd64`` with systemd-sysv and ``dom0-amd64``:
  bookworm; ``guest-trixie-amd64`` and ``guest-bullseye-i386``, with sysvinit-core, for
  the guests ``fleet.SUITES`` puts on Debian 13 and 11), each with a ``<tree>.stamp``;
- ``images/<guest>/<role>.img``: one ext4 (or swap) image per Xen LV, exactly like the LVs
  of a xen-tools guest (root, var, swap, srv), filled with ``mkfs.ext4 -d`` (no mount),
  each with the label and UUID the lab fleet gives it (``Guest.fs_label``, ``fs_uuid``);
- ``hostkeys/<host>/``: SSH host keys made once per host, so known_hosts stays valid.

A build runs again when ``RECIPE_VERSION`` (or the inputs hashed into a stamp) changes;
the guests' images also when ``IMAGE_VERSION`` does (``build_guest``'s own recipe).
The cached images are pristine: ``lab up`` runs each guest from a copy under ``cfg.run``.
"""

from __future__ import annotations

import hashlib
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import guestfiles, repo
from .config import LabConfig
from .fleet import DEFAULT_SUITE, Fleet, Guest
from .util import debian_mirror, replace_known_hosts, run

RECIPE_VERSION = "4"  # 4: a tree's suite in its stamp; a guest tree empties its repo
IMAGE_VERSION = "2"  # 2: each filesystem's UUID set (mkfs -U), stable per guest and role
FILES = Path(__file__).parent / "files"
BASE = "openssh-server,rsync,python3,iproute2,procps,less,iputils-ping"
GUEST = "rsyslog,exim4-daemon-light,bsd-mailx,cron,ifupdown,arping"
# bookworm's rsyslog init script; trixie's systemd-sysv conflicts with the package (the
# lab's containers start trixie's rsyslog with a stand-in: containers.STANDINS).
ORPHANS = "orphan-sysvinit-scripts"
TREES: dict[str, tuple[str, str, str]] = {
    # name: (Debian suite, arch, extra packages); guest trees are named by guest_tree
    "guest-amd64": ("bookworm", "amd64", f"{GUEST},{ORPHANS},systemd-sysv"),
    "guest-trixie-amd64": ("trixie", "amd64", f"{GUEST},systemd-sysv"),
    "guest-bullseye-i386": ("bullseye", "i386", f"{GUEST},{ORPHANS},sysvinit-core"),
    "dom0-amd64": ("bookworm", "amd64", "util-linux,e2fsprogs"),
}


def guest_tree(guest: Guest) -> str:
    """The tree a guest is built from: ``guest-<arch>`` (bookworm) or
    ``guest-<suite>-<arch>``, one of ``TREES``."""
    suite = "" if guest.suite == DEFAULT_SUITE else f"{guest.suite}-"
    name = f"guest-{suite}{guest.arch}"
    if name not in TREES:
        raise KeyError(f"lab guest {guest.name}: no tree {name} in xen2kvm.lab.images.TREES")
    return name


def _stamp(*parts: str) -> str:
    return hashlib.sha256("\0".join((RECIPE_VERSION, *parts)).encode()).hexdigest()[:16]


def _fresh(stamp_file: Path, stamp: str) -> bool:
    return stamp_file.exists() and stamp_file.read_text().strip() == stamp


def ensure_ssh_key(cfg: LabConfig) -> None:
    """The operator's key (cfg.ssh_key): made once, put in every lab host's authorized_keys."""
    cfg.keys.mkdir(parents=True, exist_ok=True)
    if not cfg.ssh_key.exists():
        run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "xen2kvm-lab",
                "-f",
                str(cfg.ssh_key),
            ]
        )


def host_keys(cfg: LabConfig, host: str) -> Path:
    """Directory of ``host``'s SSH host keys (made on first use, then kept)."""
    keydir = cfg.cache / "hostkeys" / host
    keydir.mkdir(parents=True, exist_ok=True)
    for kind in ("ed25519", "ecdsa", "rsa"):
        key = keydir / f"ssh_host_{kind}_key"
        if not key.exists():
            run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"root@{host}", "-f", str(key)])
    return keydir


def install_host_keys(cfg: LabConfig, host: str, root: Path) -> None:
    ssh = root / "etc/ssh"
    for old in ssh.glob("ssh_host_*"):
        old.unlink()
    for key in host_keys(cfg, host).iterdir():
        shutil.copy2(key, ssh / key.name)
        (ssh / key.name).chmod(0o600 if not key.name.endswith(".pub") else 0o644)


def tree_path(cfg: LabConfig, name: str) -> Path:
    return cfg.cache / "trees" / name


def tree_stamp(name: str) -> str:
    """What tree ``name`` is made of (suite, arch, packages, its repo's packages), hashed."""
    suite, arch, extra = TREES[name]
    packages = ",".join(repo.repo_packages(suite, arch))
    return _stamp(name, suite, arch, BASE, extra, packages)


def build_tree(cfg: LabConfig, name: str, log: Path) -> bool:
    """debootstrap tree ``name`` (and fetch its repo packages) unless cached; True if built."""
    suite, arch, extra = TREES[name]
    stamp = tree_stamp(name)
    path = tree_path(cfg, name)
    stamp_file = path.with_suffix(".stamp")
    if path.is_dir() and _fresh(stamp_file, stamp):
        return False
    stamp_file.unlink(missing_ok=True)
    tmp = path.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)
    debcache = cfg.cache / "debs" / name  # one per tree: debootstraps run in parallel
    debcache.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        out.write(f"debootstrap {name}\n")
    cmd = [
        "debootstrap",
        "--variant=minbase",
        f"--arch={arch}",
        f"--cache-dir={debcache}",
        f"--include={BASE},{extra}",
        suite,
        str(tmp),
        debian_mirror(),
    ]
    proc = run(cmd, check=False, capture=True)
    log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"debootstrap of {name} failed, see {log}")
    if name.startswith("guest-"):
        repo.download_into_repo(cfg, tmp, suite, arch)
    tmp.rename(path)
    stamp_file.write_text(stamp + "\n")
    return True


def build_trees(cfg: LabConfig) -> list[str]:
    """All trees, in parallel (network bound); names of those that were (re)built."""
    logs = cfg.cache / "logs"
    with ThreadPoolExecutor(max_workers=len(TREES)) as pool:
        futures = {n: pool.submit(build_tree, cfg, n, logs / f"{n}.log") for n in TREES}
        return [n for n, f in futures.items() if f.result()]


def image_dir(cfg: LabConfig, guest: str) -> Path:
    return cfg.cache / "images" / guest


def _guest_stamp(cfg: LabConfig, guest: Guest) -> str:
    tree_stamp = tree_path(cfg, guest_tree(guest)).with_suffix(".stamp").read_text().strip()
    files = "".join(
        hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted((FILES / "guest").iterdir())
    )
    return _stamp(
        IMAGE_VERSION,
        repr(guest),
        tree_stamp,
        files,
        guestfiles.RECIPE,
        cfg.ssh_key.with_suffix(".pub").read_text(),
    )


def build_guest(cfg: LabConfig, fleet: Fleet, guest: Guest) -> bool:
    """The guest's LV images from its tree, unless cached; True if built."""
    out = image_dir(cfg, guest.name)
    stamp = _guest_stamp(cfg, guest)
    stamp_file = out / "stamp"
    if _fresh(stamp_file, stamp):
        return False
    build = cfg.cache / "build" / guest.name
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    staging = build / "root"
    run(["cp", "-a", "--reflink=auto", str(tree_path(cfg, guest_tree(guest))), str(staging)])
    guestfiles.customize(cfg, fleet, guest, staging)
    install_host_keys(cfg, guest.name, staging)
    tmp = out.with_suffix(".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    # Split the tree by mount point, deepest first, as the guest's fstab mounts it.
    parts = sorted(
        (d for d in guest.disks if d.mountpoint not in (None, "/")),
        key=lambda d: -len(str(d.mountpoint)),
    )
    sources: dict[str, Path] = {"root": staging}
    for disk in parts:
        mp = staging / str(disk.mountpoint).lstrip("/")
        src = build / disk.role
        mp.rename(src)
        mp.mkdir(mode=0o755)
        sources[disk.role] = src
    for disk in guest.disks:
        img = tmp / f"{disk.role}.img"
        run(["truncate", "-s", f"{disk.size_mib}M", str(img)])
        named = ["-U", guest.fs_uuid(disk), "-L", guest.fs_label(disk)]
        if disk.mountpoint is None:
            run(["mkswap", "-q", *named, str(img)])
        else:
            run(["mkfs.ext4", "-q", "-F", *named, "-d", str(sources[disk.role]), str(img)])
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    shutil.rmtree(build, ignore_errors=True)
    stamp_file.write_text(stamp + "\n")
    return True


def build_guests(cfg: LabConfig, fleet: Fleet) -> list[str]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {g.name: pool.submit(build_guest, cfg, fleet, g) for g in fleet.guests}
        return [n for n, f in futures.items() if f.result()]


def known_hosts_lines(cfg: LabConfig, name: str, address: str) -> list[str]:
    keydir = host_keys(cfg, name)
    lines = []
    for pub in sorted(keydir.glob("*.pub")):
        kind, blob = pub.read_text().split()[:2]
        lines.append(f"{address},{name} {kind} {blob}")
    return lines


def write_known_hosts(cfg: LabConfig, hosts: dict[str, str]) -> None:
    """Put the lab hosts' keys in cfg.known_hosts; lines of other hosts (kvm1) stay."""
    lines = [line for n, a in hosts.items() for line in known_hosts_lines(cfg, n, a)]
    replace_known_hosts(cfg.known_hosts, set(hosts) | set(hosts.values()), lines)
