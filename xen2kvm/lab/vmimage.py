"""The lab KVM host's bootable disk: a Debian 13 tree, then a raw MBR image built from it.

The machine's kernel has no device-mapper and no partition tables, so the image is made
without loop partitions: ``sfdisk`` on the image file, ``mkfs.ext4 -d`` written straight
at each partition's byte offset (``-E offset=``), and GRUB's ``boot.img``/``core.img``
put in place by hand (what ``grub-install`` would do). Everything is cached under
``cfg.cache/kvm`` with a recipe stamp; a stamp that does not match means rebuild.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import string
import tempfile
from importlib import resources
from pathlib import Path

from xen2kvm.lab.config import LabConfig
from xen2kvm.lab.util import debian_mirror, run

# Debian 13, what an operator installs on a KVM host today, with lvm2's stock settings:
# udev autoactivates any VG that appears, guest VGs included (operations/util/udev.py).
SUITE = "trixie"
# Bump when the tree's package set changes (rebuilds the slow part).
TREE_RECIPE = "kvm1-tree-3"
# Bump when the configuration or the image layout changes (fast part).
IMAGE_RECIPE = "kvm1-image-5"  # 5: root's user manager lingers

BOOT_UUID = "5ab1e000-0000-4000-8000-00000000b001"
ROOT_UUID = "5ab1e000-0000-4000-8000-00000000b002"
IMAGE_MIB = 4096
DISK_ID = "0x5ab1e020"
BOOT_MIB = 256
SECTOR = 512
FIRST_SECTOR = 2048

BASE_INCLUDE = ("openssh-server", "python3", "iproute2", "procps", "iputils-ping", "less")
PACKAGES = (
    "linux-image-amd64", "initramfs-tools", "systemd-sysv", "udev", "dbus", "ifupdown",
    "kmod", "lvm2", "kpartx", "parted", "fdisk", "rsync", "grub-pc", "arping", "e2fsprogs",
    "dosfstools", "zstd", "libvirt-clients", "libvirt-daemon-system", "qemu-system-x86",
)  # fmt: skip
# Timers and jobs that only burn emulated CPU in a lab host.
MASKED_UNITS = (
    "apt-daily.timer", "apt-daily-upgrade.timer", "man-db.timer", "e2scrub_all.timer",
    "e2scrub_reap.service", "fstrim.timer",
    # kvm1's own libvirtd stays off: guests never run nested (see outer_libvirt.py).
    "libvirtd.service", "libvirtd.socket", "libvirtd-ro.socket", "libvirtd-admin.socket",
    "libvirtd-tcp.socket", "libvirtd-tls.socket", "virtlogd.service", "virtlogd.socket",
    "virtlogd-admin.socket", "virtlockd.service", "virtlockd.socket", "virtlockd-admin.socket",
    "libvirt-guests.service",
)  # fmt: skip

KVM_NAME = "kvm1"
KVM_ADDRESS = "198.51.100.20"
KVM_MIGRATION_ADDRESS = "203.0.113.20"  # eth1, on br1 (files/kvm/interfaces)


def kvm_dir(cfg: LabConfig) -> Path:
    return cfg.cache / "kvm"


def tree_dir(cfg: LabConfig) -> Path:
    return kvm_dir(cfg) / "root"


def image_path(cfg: LabConfig) -> Path:
    """The pristine bootable image; each run boots a copy of it."""
    return kvm_dir(cfg) / "kvm1.img"


def _file(name: str) -> str:
    return resources.files("xen2kvm.lab").joinpath("files", "kvm", name).read_text()


def _stamp_ok(stamp: Path, want: str) -> bool:
    try:
        return stamp.read_text() == want
    except FileNotFoundError:
        return False


def ensure_lab_key(cfg: LabConfig) -> Path:
    """The operator's lab key (shared with the source side): make it if it is missing."""
    cfg.keys.mkdir(parents=True, exist_ok=True)
    if not cfg.ssh_key.exists():
        proc = run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "xen2kvm-lab",
             "-f", str(cfg.ssh_key)],
            check=False, capture=True, input="n\n",
        )  # fmt: skip
        if not cfg.ssh_key.exists():  # lost no race: a real failure
            raise RuntimeError(f"ssh-keygen failed for {cfg.ssh_key}: {proc.stderr.strip()}")
    return cfg.ssh_key


def chroot_cmd(tree: Path, argv: list[str]) -> list[str]:
    """``argv`` run chrooted in ``tree`` with /proc, /sys, /dev, in a throwaway mount ns."""
    script = (
        'T="$1"; shift; mount -t proc proc "$T/proc" && '
        'mount --rbind /sys "$T/sys" && mount --rbind /dev "$T/dev" && '
        'exec chroot "$T" "$@"'
    )
    return ["unshare", "--mount", "--propagation", "private", "--fork",
            "sh", "-c", script, "sh", str(tree), *argv]  # fmt: skip


def build_tree(cfg: LabConfig) -> Path:
    """Debian 13 with a kernel, LVM, GRUB, libvirt and qemu; cached (slow: minutes)."""
    tree = tree_dir(cfg)
    stamp = kvm_dir(cfg) / "root.stamp"
    want = json.dumps([TREE_RECIPE, SUITE, BASE_INCLUDE, PACKAGES])
    if tree.is_dir() and _stamp_ok(stamp, want):
        return tree
    stamp.unlink(missing_ok=True)
    if tree.exists():
        shutil.rmtree(tree)
    debs = kvm_dir(cfg) / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    run(["debootstrap", "--variant=minbase", f"--cache-dir={debs}",
         f"--include={','.join(BASE_INCLUDE)}", SUITE, str(tree), debian_mirror()])  # fmt: skip
    shutil.copy("/etc/resolv.conf", tree / "etc/resolv.conf")
    policy = tree / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\n# xen2kvm lab build: start no daemons in the chroot\nexit 101\n")
    policy.chmod(0o755)
    run(["chroot", str(tree), "debconf-set-selections"],
        input="grub-pc grub-pc/install_devices_empty boolean true\n")  # fmt: skip
    apt = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-o",
           "Dpkg::Options::=--force-unsafe-io", "install", "-y",
           "--no-install-recommends"]  # fmt: skip
    run(chroot_cmd(tree, [*apt, *PACKAGES]))
    run(chroot_cmd(tree, ["apt-get", "clean"]))
    policy.unlink()
    stamp.write_text(want)
    return tree


def configure_tree(cfg: LabConfig, tree: Path) -> None:
    """kvm1's identity and settings (fast, idempotent: every file is rewritten whole)."""
    etc = tree / "etc"
    (etc / "hostname").write_text(f"{KVM_NAME}\n")
    (etc / "hosts").write_text(_file("hosts"))
    (etc / "resolv.conf").write_text("# lab: no DNS on purpose\nnameserver 127.0.0.1\n")
    (etc / "network/interfaces").write_text(_file("interfaces"))
    (etc / "fstab").write_text(
        f"UUID={ROOT_UUID} / ext4 errors=remount-ro 0 1\nUUID={BOOT_UUID} /boot ext4 defaults 0 2\n"
    )
    (etc / "libvirt/libvirt.conf").write_text(_file("libvirt.conf"))
    autostart = etc / "libvirt/qemu/networks/autostart/default.xml"
    autostart.unlink(missing_ok=True)
    script = tree / "usr/local/sbin/x2k-lab-vg0"
    script.write_text(_file("x2k-lab-vg0"))
    script.chmod(0o755)
    (etc / "systemd/system/x2k-lab-vg0.service").write_text(_file("x2k-lab-vg0.service"))
    ssh_dir = tree / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    keys.write_text(cfg.ssh_key.with_suffix(".pub").read_text())
    keys.chmod(0o600)
    (etc / "ssh/sshd_config.d/x2k-lab.conf").write_text("UseDNS no\nPasswordAuthentication no\n")
    # root's user manager (systemd --user) stays up: otherwise each SSH login starts it
    # again (PAM's pam_systemd), 2 to 5 s of emulated CPU, unless the last one ended
    # within seconds. An operator's host would do the same with `loginctl enable-linger`.
    linger = tree / "var/lib/systemd/linger"
    linger.mkdir(parents=True, exist_ok=True)
    (linger / "root").touch()
    run(["systemctl", f"--root={tree}", "mask", *MASKED_UNITS], capture=True)
    run(["systemctl", f"--root={tree}", "enable", "x2k-lab-vg0.service"], capture=True)


def host_key_line(tree: Path) -> str:
    """known_hosts line for kvm1 (its host key was made by openssh-server's postinst)."""
    keytype, blob = (tree / "etc/ssh/ssh_host_ed25519_key.pub").read_text().split()[:2]
    return f"{KVM_ADDRESS},{KVM_NAME} {keytype} {blob}"


def kernel_version(tree: Path) -> str:
    versions = sorted(p.name for p in (tree / "lib/modules").iterdir())
    if not versions:
        raise RuntimeError(f"no kernel in {tree}/lib/modules: rebuild the tree")
    return versions[-1]


def _image_want(cfg: LabConfig, tree: Path) -> str:
    digest = hashlib.sha256()
    for name in sorted(
        p.name for p in resources.files("xen2kvm.lab").joinpath("files", "kvm").iterdir()
    ):
        digest.update(name.encode() + _file(name).encode())
    digest.update(cfg.ssh_key.with_suffix(".pub").read_bytes())
    stamp = (kvm_dir(cfg) / "root.stamp").read_text()
    return json.dumps([IMAGE_RECIPE, IMAGE_MIB, BOOT_MIB, stamp, digest.hexdigest()])


def build_image(cfg: LabConfig, tree: Path) -> Path:
    """The bootable raw MBR image (p1 /boot, p2 /), cached; rebuilt when its inputs change."""
    img = image_path(cfg)
    stamp = img.with_suffix(".stamp")
    want = _image_want(cfg, tree)
    if img.exists() and _stamp_ok(stamp, want):
        return img
    stamp.unlink(missing_ok=True)
    configure_tree(cfg, tree)
    kver = kernel_version(tree)
    boot_sectors = BOOT_MIB * 1024 * 1024 // SECTOR
    root_start = FIRST_SECTOR + boot_sectors
    tmp_img = img.with_suffix(".img.tmp")
    tmp_img.unlink(missing_ok=True)
    run(["truncate", "-s", f"{IMAGE_MIB}M", str(tmp_img)])
    table = (
        f"label: dos\nlabel-id: {DISK_ID}\n"
        f"start={FIRST_SECTOR}, size={boot_sectors}, type=83, bootable\n"
        f"start={root_start}, type=83\n"
    )
    run(["sfdisk", "-q", str(tmp_img)], input=table)
    root_sectors = IMAGE_MIB * 1024 * 1024 // SECTOR - root_start
    with tempfile.TemporaryDirectory(dir=kvm_dir(cfg)) as tmp:
        boot = Path(tmp, "boot")
        (boot / "grub/i386-pc").mkdir(parents=True)
        for name in (f"vmlinuz-{kver}", f"initrd.img-{kver}", f"config-{kver}"):
            shutil.copy2(tree / "boot" / name, boot / name)
        for mod in (tree / "usr/lib/grub/i386-pc").iterdir():
            if mod.suffix in (".mod", ".lst"):
                shutil.copy2(mod, boot / "grub/i386-pc" / mod.name)
        grub_cfg = string.Template(_file("grub.cfg")).substitute(
            kver=kver, boot_uuid=BOOT_UUID, root_uuid=ROOT_UUID
        )
        (boot / "grub/grub.cfg").write_text(grub_cfg)
        _mkfs_at(tmp_img, FIRST_SECTOR, boot_sectors, BOOT_UUID, "boot", boot)
        _mkfs_at(tmp_img, root_start, root_sectors, ROOT_UUID, "root", tree)
        core = _grub_core(tree, Path(tmp))
        if core.stat().st_size > (FIRST_SECTOR - 1) * SECTOR:
            raise RuntimeError(f"{core} does not fit in the MBR gap")
        with tmp_img.open("r+b") as out:
            out.write((tree / "usr/lib/grub/i386-pc/boot.img").read_bytes()[:440])
            out.seek(SECTOR)
            out.write(core.read_bytes())
    tmp_img.replace(img)
    stamp.write_text(want)
    return img


def _mkfs_at(img: Path, start: int, sectors: int, uuid: str, label: str, src: Path) -> None:
    """An ext4 filesystem populated from ``src``, written into ``img`` at a sector offset."""
    run(["mkfs.ext4", "-q", "-F", "-U", uuid, "-L", label, "-E",
         f"offset={start * SECTOR},root_owner=0:0", "-d", str(src), str(img),
         f"{sectors * SECTOR // 1024}k"])  # fmt: skip


def _grub_core(tree: Path, tmp: Path) -> Path:
    """GRUB's core.img for BIOS/MBR, made with the tree's own grub-mkimage."""
    inside = "/root/x2k-core.img"
    modules = ["biosdisk", "part_msdos", "ext2", "search_fs_uuid"]
    run(["chroot", str(tree), "grub-mkimage", "-O", "i386-pc", "-o", inside,
         "-p", "(hd0,msdos1)/grub", *modules])  # fmt: skip
    core = tmp / "core.img"
    shutil.move(str(tree) + inside, core)
    return core


def build(cfg: LabConfig) -> Path:
    """Tree + image, both cached; returns the pristine image."""
    ensure_lab_key(cfg)
    tree = build_tree(cfg)
    return build_image(cfg, tree)
