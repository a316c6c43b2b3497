"""The lab's KVM host ``kvm1`` (inventory/lab.yml): a Debian 13 VM under qemu TCG.

kvm1 is a real Debian KVM host as far as the migration tool can tell: LVM volume group
``vg0`` on its second disk, device-mapper, kpartx, grub and virsh all work inside it.
Its guests, though, boot on the outer machine (see ``outer_libvirt``): nested emulation
does not boot in useful time.

Runs entirely inside the lab namespace ``<prefix>-net``: qemu's tap is enslaved to br0
there, and kvm1 (198.51.100.20) is reachable only from inside it.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from xen2kvm.lab import net, outer_libvirt, vmimage
from xen2kvm.lab.config import LAB_BRIDGE, MIGRATION_BRIDGE, LabConfig
from xen2kvm.lab.util import in_netns, kill_pid, netns_exists, read_pid, replace_known_hosts, run

ADDRESS = vmimage.KVM_ADDRESS
MAC = "52:54:00:51:64:20"
TAP = "tap-kvm1"
# Its second NIC, eth1: on the migration network (br1), at vmimage.KVM_MIGRATION_ADDRESS.
MIGRATION_MAC = "52:54:00:cb:00:14"
MIGRATION_TAP = "tap-kvm1m"
MEMORY_MIB = 1536
VCPUS = 2
PV_SIZE = "16G"
PV_IN_VM = "/dev/vdb"  # kvm1's name for the PV disk (second virtio disk)
SSH_TIMEOUT = 300.0
# Debian 12's qemu 7.2 runs kvm1's 2 vcpus on a thread each (multi-threaded TCG), and its
# handling of code one vcpu patches while the other runs it can let the kernel's boot-time
# patching (a static key flipped at "crng init done") trap on the other vcpu: "Oops: int3"
# in get_random_u64, then a panic (seen once so far, 2026-12-03). A boot that
# panics is started again, from a fresh copy of the image, this many times in all.
BOOT_ATTEMPTS = 3
PANIC = "Kernel panic - not syncing"


class Panicked(RuntimeError):
    """kvm1's kernel panicked while it booted (its serial log says so)."""


def run_dir(cfg: LabConfig) -> Path:
    return cfg.run / "kvm"


def disk_path(cfg: LabConfig) -> Path:
    return run_dir(cfg) / "kvm1.img"


def pv_path(cfg: LabConfig) -> Path:
    """kvm1's PV disk (vg0), per run; the boot glue reads LV ranges out of it."""
    return run_dir(cfg) / "kvm1-pv.img"


def serial_log(cfg: LabConfig) -> Path:
    return run_dir(cfg) / "kvm1-serial.log"


def qemu_pidfile(cfg: LabConfig) -> Path:
    return cfg.pids / "kvm1-qemu.pid"


def ssh(cfg: LabConfig, remote: str, *, check: bool = True, timeout: float = 600) -> str:
    """Run a shell command on kvm1 as root (lab key, known_hosts, strict checking)."""
    argv = outer_libvirt.ssh_argv(cfg, ADDRESS, remote)
    return run(argv, check=check, capture=True, timeout=timeout).stdout


# -- build -----------------------------------------------------------------------------------


def build_image(cfg: LabConfig) -> None:
    """kvm1's pristine disk image alone (cached, idempotent): ``lab up`` builds it beside
    the Xen side's trees; ``build`` then finds it."""
    t0 = time.monotonic()
    vmimage.build(cfg)
    print(f"kvm1: image ready in {time.monotonic() - t0:.0f}s ({vmimage.image_path(cfg)})")


def build(cfg: LabConfig) -> None:
    """kvm1's pristine disk image (cached, idempotent) and its known_hosts entry."""
    build_image(cfg)
    line = vmimage.host_key_line(vmimage.tree_dir(cfg))
    replace_known_hosts(cfg.known_hosts, set(line.split()[0].split(",")), [line])


# -- network ---------------------------------------------------------------------------------


def ensure_net(cfg: LabConfig) -> None:
    """The lab namespace with br0 (``net.lab_net_up``, idempotent; no uplink, no forward).

    When the namespace was not there yet (kvm side brought up alone), a marker records
    that this module made it, so ``down`` removes only a namespace it created.
    """
    if not netns_exists(cfg.netns):
        run_dir(cfg).mkdir(parents=True, exist_ok=True)
        (run_dir(cfg) / "netns-owned").touch()
    net.lab_net_up(cfg)


def _tap_up(cfg: LabConfig) -> None:
    ns = cfg.netns
    for tap, bridge in ((TAP, LAB_BRIDGE), (MIGRATION_TAP, MIGRATION_BRIDGE)):
        if run(["ip", "-n", ns, "link", "show", tap], check=False, capture=True).returncode != 0:
            run(["ip", "-n", ns, "tuntap", "add", tap, "mode", "tap"])
        run(["ip", "-n", ns, "link", "set", tap, "master", bridge, "up"])


# -- up / down -------------------------------------------------------------------------------


def qemu_argv(cfg: LabConfig) -> list[str]:
    return [
        "qemu-system-x86_64", "-name", "kvm1", "-machine", "pc,accel=tcg",
        "-m", str(MEMORY_MIB), "-smp", str(VCPUS), "-nodefaults", "-display", "none",
        "-drive", f"file={disk_path(cfg)},format=raw,if=none,id=root,cache=unsafe",
        "-device", "virtio-blk-pci,drive=root,serial=x2k-root,bootindex=0",
        # writeback, not unsafe: what kvm1 flushes is in the file, read by the boot glue
        "-drive", f"file={pv_path(cfg)},format=raw,if=none,id=pv,cache=writeback",
        "-device", "virtio-blk-pci,drive=pv,serial=x2k-pv",
        "-netdev", f"tap,id=n0,ifname={TAP},script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=n0,mac={MAC}",
        "-netdev", f"tap,id=n1,ifname={MIGRATION_TAP},script=no,downscript=no",
        "-device", f"virtio-net-pci,netdev=n1,mac={MIGRATION_MAC}",
        "-serial", f"file:{serial_log(cfg)}", "-monitor", "none",
        "-daemonize", "-pidfile", str(qemu_pidfile(cfg)),
    ]  # fmt: skip


def _start(cfg: LabConfig) -> None:
    """Start kvm1's qemu on a fresh copy of its image (its PV disk kept, or made)."""
    run(["cp", "--reflink=auto", "--sparse=always", str(vmimage.image_path(cfg)),
         str(disk_path(cfg))])  # fmt: skip
    if not pv_path(cfg).exists():
        run(["truncate", "-s", PV_SIZE, str(pv_path(cfg))])
    serial_log(cfg).unlink(missing_ok=True)
    _tap_up(cfg)
    run(in_netns(cfg.netns, qemu_argv(cfg)))


def _wait_ssh(cfg: LabConfig, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        argv = outer_libvirt.ssh_argv(cfg, ADDRESS, "vgs vg0")
        proc = run(argv, check=False, capture=True, timeout=30)
        if proc.returncode == 0:
            return
        if read_pid(qemu_pidfile(cfg)) is None:
            raise RuntimeError(f"kvm1: qemu exited; see {serial_log(cfg)}")
        if PANIC in serial_log(cfg).read_text(errors="replace"):
            raise Panicked(f"kvm1: its kernel panicked while booting; see {serial_log(cfg)}")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"kvm1: no SSH with vg0 after {timeout:.0f}s ({proc.stderr.strip()}); "
                f"see {serial_log(cfg)}"
            )
        time.sleep(2)


def up(cfg: LabConfig) -> None:
    """Start kvm1 and the outer libvirtd; return once kvm1 answers SSH and has vg0."""
    t0 = time.monotonic()
    build(cfg)
    ensure_net(cfg)
    run_dir(cfg).mkdir(parents=True, exist_ok=True)
    cfg.pids.mkdir(parents=True, exist_ok=True)
    outer_libvirt.start(cfg, ADDRESS, {PV_IN_VM: pv_path(cfg)})
    t1 = time.monotonic()
    for attempt in range(1, BOOT_ATTEMPTS + 1):
        if read_pid(qemu_pidfile(cfg)) is None:
            _start(cfg)
        t2 = time.monotonic()
        try:
            _wait_ssh(cfg, SSH_TIMEOUT)
            break
        except Panicked as exc:
            if attempt == BOOT_ATTEMPTS:
                raise
            kept = serial_log(cfg).with_suffix(f".panic{attempt}.log")
            serial_log(cfg).replace(kept)
            print(f"{exc}: started again (that boot's log: {kept})", flush=True)
            kill_pid(qemu_pidfile(cfg), wait=15)
    t3 = time.monotonic()
    print(
        f"kvm1: up in {t3 - t0:.0f}s (image+libvirtd {t1 - t0:.0f}s, qemu {t2 - t1:.0f}s, "
        f"boot to SSH {t3 - t2:.0f}s) at {ADDRESS}"
    )


def down(cfg: LabConfig) -> None:
    """Stop everything ``up`` started (by pid) and remove the per-run state."""
    outer_libvirt.stop(cfg)
    kill_pid(qemu_pidfile(cfg), wait=15)
    outer_libvirt.detach_loops(pv_path(cfg))
    if netns_exists(cfg.netns):
        for tap in (TAP, MIGRATION_TAP):
            run(["ip", "-n", cfg.netns, "link", "del", tap], check=False, capture=True)
    owned = run_dir(cfg) / "netns-owned"
    if owned.exists():
        net.lab_net_down(cfg)
    for path in (disk_path(cfg), pv_path(cfg), owned):
        path.unlink(missing_ok=True)
    with contextlib.suppress(FileNotFoundError):
        _rmtree(outer_libvirt.base(cfg))


def _rmtree(path: Path) -> None:
    run(["rm", "-rf", "--one-file-system", str(path)])
    if path.exists():
        raise RuntimeError(f"{path} is still there (a mount left over?)")


def status(cfg: LabConfig) -> dict[str, object]:
    pid = read_pid(qemu_pidfile(cfg))
    state: dict[str, object] = {
        "kvm1": {
            "address": ADDRESS,
            "qemu_pid": pid,
            "running": pid is not None,
            "image": str(vmimage.image_path(cfg)),
            "image_built": vmimage.image_path(cfg).exists(),
            "serial_log": str(serial_log(cfg)),
        },
        "outer_libvirt": outer_libvirt.status(cfg),
    }
    if pid is not None:
        proc = run(outer_libvirt.ssh_argv(cfg, ADDRESS, "true"), check=False, capture=True)
        state["kvm1"]["ssh"] = proc.returncode == 0  # type: ignore[index]
    return state
