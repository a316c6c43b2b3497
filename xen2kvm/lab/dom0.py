"""The Xen dom0 ``xen1``: a container host holding the guests' LVs and Xen configs.

Each guest LV is a per-run copy of a cached image (``cfg.run/<guest>/disks/<role>.img``)
attached read-write to a loop device. The loop stays attached while the guest is shut
down, as an LV would: in the dom0 the LVs are real block nodes ``/dev/xenvg/<guest>-<role>``
(the loop's major:minor, made in the dom0's private /dev), so ``blockdev --getsize64`` and
``mount -o ro`` work there. ``/etc/xen/<guest>.cfg`` are real xl configs (xen-tools style:
the dom0's kernel, the guest has none), linked from ``/etc/xen/auto``. ``/usr/sbin/xl`` is
the lab's Xen stand-in (see hypervisor.py).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path, PurePosixPath

from . import containers, images
from .config import BACKEND_XEN_BRIDGE, LabConfig
from .fleet import Fleet, Guest, Host
from .util import run

FILES = Path(__file__).parent / "files"
VG = "xenvg"
XL_SOCKET_DIR = "/run/xen2kvm-lab"  # in the dom0: the controller's socket dir, bind-mounted
DOM0_KERNEL = "6.1.0-35-amd64"
# In a dom0: the kernel release its ``xl info`` reports (the lab's stand-in for the kernel
# the hypervisor booted it with). Write another release there to "upgrade" the dom0.
KERNEL_RELEASE_FILE = "/var/lib/xen2kvm-lab/kernel-release"


def lv_path(guest: str, role: str) -> str:
    """Path of a guest's LV node inside the dom0."""
    return f"/dev/{VG}/{guest}-{role}"


def disk_copy(cfg: LabConfig, guest: str, role: str, on: str | None = None) -> Path:
    """The image of a guest's LV: on its own dom0 (``on`` None), or the blank LV the lab
    gives it on the dom0 ``on`` it is rehomed to."""
    return cfg.run / guest / (f"disks-{on}" if on else "disks") / f"{role}.img"


def loops_file(cfg: LabConfig, guest: str, on: str | None = None) -> Path:
    return cfg.run / guest / (f"loops-{on}.json" if on else "loops.json")


def _backing(dev: str) -> str | None:
    try:
        return Path(f"/sys/block/{Path(dev).name}/loop/backing_file").read_text().strip()
    except FileNotFoundError:
        return None


def attach_lvs(cfg: LabConfig, guest: Guest, on: str | None = None) -> dict[str, str]:
    """Per-run copies of the guest's images on loop devices (idempotent): role -> /dev/loopN.

    ``on``: another dom0 the guest is rehomed to; its LVs there start blank (sparse files of
    the same sizes), as the LVs an admin makes for it on the new dom0 would.
    """
    if on == guest.xen_host:
        on = None
    known: dict[str, str] = {}
    if loops_file(cfg, guest.name, on).exists():
        known = json.loads(loops_file(cfg, guest.name, on).read_text())
    loops: dict[str, str] = {}
    for disk in guest.disks:
        copy = disk_copy(cfg, guest.name, disk.role, on)
        dev = known.get(disk.role)
        if dev and _backing(dev) == str(copy):
            loops[disk.role] = dev
            continue
        if not copy.exists():
            copy.parent.mkdir(parents=True, exist_ok=True)
            if on:
                run(["truncate", "-s", f"{disk.size_mib}M", str(copy)])
            else:
                src = images.image_dir(cfg, guest.name) / f"{disk.role}.img"
                run(["cp", "--sparse=always", str(src), str(copy)])
        loops[disk.role] = run(["losetup", "--find", "--show", str(copy)], capture=True).stdout
        loops[disk.role] = loops[disk.role].strip()
        loops_file(cfg, guest.name, on).write_text(json.dumps(loops, indent=1))
    return loops


def detach_lvs(cfg: LabConfig, guest: str, on: str | None = None) -> None:
    """Detach the loops this lab attached (checked by backing file); never anyone else's."""
    path = loops_file(cfg, guest, on)
    if not path.exists():
        return
    for role, dev in json.loads(path.read_text()).items():
        if _backing(dev) == str(disk_copy(cfg, guest, role, on)):
            run(["losetup", "-d", dev])
    path.unlink()


def lv_devnodes(cfg: LabConfig, fleet: Fleet, host: Host) -> list[containers.DevNode]:
    """The LVs of a dom0: its guests', and blank ones for the guests rehomed to it."""
    nodes = []
    for guest in fleet.guests:
        if host.name not in (guest.xen_host, guest.rehome_to):
            continue
        for role, dev in attach_lvs(cfg, guest, host.name).items():
            rdev = os.stat(dev).st_rdev
            nodes.append(
                containers.DevNode(lv_path(guest.name, role), os.major(rdev), os.minor(rdev))
            )
    return nodes


def xen_config(guest: Guest) -> str:
    """An xl config as xen-tools wrote them for PV guests booted with the dom0's kernel."""
    disks = ",\n".join(
        f"                  'phy:{lv_path(guest.name, d.role)},{d.vdev},w'" for d in guest.disks
    )
    lab_ips = " ".join(ip for ip in guest.ips if ip not in guest.backend_ips)
    vifs = [f"'mac={guest.mac},bridge=xenbr0,ip={lab_ips}'"]
    if guest.backend_ips:
        ips = " ".join(guest.backend_ips)
        vifs.append(f"'mac={guest.backend_mac},bridge={BACKEND_XEN_BRIDGE},ip={ips}'")
    return f"""#
# Configuration file for the Xen instance {guest.name}, created
# by xen-tools 4.9.2.
#

#
#  Kernel + memory size
#
kernel      = '/boot/vmlinuz-{DOM0_KERNEL}'
extra       = 'elevator=noop'
ramdisk     = '/boot/initrd.img-{DOM0_KERNEL}'

type        = 'pv'
vcpus       = '1'
memory      = '512'

#
#  Disk device(s).
#
root        = '/dev/xvda2 ro'
disk        = [
{disks},
              ]

#
#  Physical volumes
#

#
#  Hostname
#
name        = '{guest.name}'

#
#  Networking
#
vif         = [ {", ".join(vifs)} ]

#
#  Behaviour
#
on_poweroff = 'destroy'
on_reboot   = 'restart'
on_crash    = 'restart'
"""


def prepare_upper(cfg: LabConfig, fleet: Fleet, host: Host, upper: Path) -> None:
    """Files the dom0 gets on top of its cached tree: identity, Xen configs, the xl fake."""
    (upper / "etc/xen/auto").mkdir(parents=True, exist_ok=True)
    for guest in fleet.guests:
        if guest.xen_host != host.name:
            continue
        # Where the inventory says its config is: mail1.fleet.example's is
        # /etc/xen/mail1.fleet.example.cfg, whose name = 'mail1' (fleet.py).
        config = PurePosixPath(guest.xen_config)
        (upper / config.relative_to("/")).write_text(xen_config(guest))
        link = upper / "etc/xen/auto" / config.name
        if not link.is_symlink():
            link.symlink_to(config)
    release = upper / KERNEL_RELEASE_FILE.lstrip("/")
    if not release.exists():
        release.parent.mkdir(parents=True, exist_ok=True)
        release.write_text(f"{DOM0_KERNEL}\n")
    (upper / "usr/sbin").mkdir(parents=True, exist_ok=True)
    shutil.copy(FILES / "xl", upper / "usr/sbin/xl")
    (upper / "usr/sbin/xl").chmod(0o755)
    (upper / "etc/hostname").write_text(f"{host.name}\n")
    (upper / "etc/hosts").write_text(
        f"127.0.0.1\tlocalhost\n{host.address}\t{host.name}.lab.test {host.name}\n"
    )
    (upper / "etc/resolv.conf").write_text("nameserver 127.0.0.1\n")
    (upper / "root/.ssh").mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = upper / "root/.ssh/authorized_keys"
    keys.write_text(cfg.ssh_key.with_suffix(".pub").read_text())
    keys.chmod(0o600)
    (upper / "etc/ssh").mkdir(parents=True, exist_ok=True)
    images.install_host_keys(cfg, host.name, upper)
    (upper / XL_SOCKET_DIR.lstrip("/")).mkdir(parents=True, exist_ok=True)


def spec(cfg: LabConfig, fleet: Fleet, host: Host, socket_dir: Path) -> containers.Spec:
    """The dom0 as ``lab up`` starts it: its disk (the overlay's upper dir) given the lab's
    files first (``prepare_upper``), then booted."""
    upper = cfg.run / host.name / "upper"
    upper.mkdir(parents=True, exist_ok=True)
    prepare_upper(cfg, fleet, host, upper)
    return boot_spec(cfg, fleet, host, socket_dir)


def boot_spec(cfg: LabConfig, fleet: Fleet, host: Host, socket_dir: Path) -> containers.Spec:
    """The dom0 booted from its disk as it is: a reboot rewrites nothing in the upper dir
    (keys added to authorized_keys, removed autostart links, files in /root all stay)."""
    base = cfg.run / host.name
    upper, work = base / "upper", base / "work"
    if not upper.is_dir():
        raise RuntimeError(f"{host.name} has no disk in {upper}: `xen2kvm lab up` makes it")
    work.mkdir(parents=True, exist_ok=True)
    lower = images.tree_path(cfg, "dom0-amd64")
    overlay = f"lowerdir={lower},upperdir={upper},workdir={work}"
    return containers.Spec(
        name=host.name,
        root=str(root(cfg, host.name)),
        workdir=str(base),
        mounts=[containers.Mount("overlay", "/", "overlay", overlay)],
        services=["ssh"],
        binds=[containers.Mount(str(socket_dir), XL_SOCKET_DIR, "none")],
        devnodes=lv_devnodes(cfg, fleet, host),
    )


def guest_root(cfg: LabConfig, name: str) -> Path:
    """Where a guest's root is mounted, inside its own mount namespace."""
    return cfg.run / name / "mnt"


def root(cfg: LabConfig, name: str) -> Path:
    """Where the dom0's root is mounted, inside its own mount namespace."""
    return cfg.run / name / "mnt"


def clean_tmp(cfg: LabConfig, name: str) -> None:
    """Empty the stopped dom0's /tmp, as Debian's boot does (tmpfiles' ``D /tmp``); the
    tree below it has an empty /tmp, so its upper dir holds all there is."""
    tmp = cfg.run / name / "upper/tmp"
    if tmp.is_dir():
        for entry in tmp.iterdir():
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()


def guest_spec(cfg: LabConfig, guest: Guest, loops: dict[str, str]) -> containers.Spec:
    """A guest container mounts its own LVs (root at its root, /var at /var ...)."""
    mounts = [
        containers.Mount(loops[d.role], str(d.mountpoint), "ext4", "rw")
        for d in guest.disks
        if d.mountpoint is not None
    ]
    return containers.Spec(
        name=guest.name,
        root=str(guest_root(cfg, guest.name)),
        workdir=str(cfg.run / guest.name),
        mounts=mounts,
        services=["rsyslog", "cron", "exim4", "ssh", "x2k-app"],
        linux32=guest.arch == "i386",
    )
