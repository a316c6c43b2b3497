"""Platform: the guest runs on KVM's virtio disk and NIC, without Xen leftovers, with a
getty on the serial port, every fstab entry mounted, root read-write, the planned kernel
architecture, and a clock in step."""

from __future__ import annotations

import time

import pytest

KERNEL_MACHINE = {"amd64": "x86_64", "i386": "i686"}


def _kvm(target) -> None:
    if target.kvm is None:
        pytest.skip(f"{target.spec.name}: not on KVM (rehomed on Xen)")


def test_virtio_disk(target):
    _kvm(target)
    buses = {t.get("dev"): t.get("bus") for t in target.domain.iter("target") if t.get("bus")}
    assert buses and set(buses.values()) == {"virtio"}, (
        f"{target.spec.name}: the domain's disks are on {buses}, not all virtio"
    )
    driver = target.host.run("readlink -f /sys/block/vda/device/driver").stdout.strip()
    assert driver.endswith("/virtio_blk"), (
        f"{target.spec.name}: the guest has no virtio_blk vda (driver: {driver or 'none'})"
        + target.excerpt("ls /sys/block")
    )


# Each of the guest's network interfaces: its name, MAC and driver (one line each).
NICS = (
    'for n in /sys/class/net/*; do [ -e "$n/device" ] || continue; '
    'printf "%s %s %s\\n" "${n##*/}" "$(cat "$n/address")" "$(readlink -f "$n/device/driver")"; '
    "done"
)


def test_virtio_nic(target):
    """Every NIC of the domain is virtio, and in the guest the interface with its MAC runs
    on virtio_net (each of them, whatever the guest calls it)."""
    _kvm(target)
    models = [m.get("type") for m in target.domain.findall("devices/interface/model")]
    assert models and set(models) == {"virtio"}, (
        f"{target.spec.name}: the domain's NIC models are {models}, not all virtio"
    )
    listed = target.host.run(NICS).stdout.split("\n")
    drivers = {f[1].lower(): (f[0], f[2]) for f in (line.split() for line in listed) if len(f) == 3}
    wrong = []
    for mac in (m.get("address", "").lower() for m in target.domain.iter("mac")):
        name, driver = drivers.get(mac, (None, ""))
        if name is None or not driver.endswith("/virtio_net"):
            wrong.append(f"{mac}: {f'{name} on {driver}' if name else 'no interface has it'}")
    assert not wrong, (
        f"{target.spec.name}: expected each of the domain's NICs on virtio_net in the guest: "
        + "; ".join(wrong)
        + target.excerpt(NICS)
    )


def test_no_xen_leftovers(target):
    _kvm(target)
    leftovers = []
    if target.host.file("/proc/xen").exists:
        leftovers.append("/proc/xen exists")
    inittab = target.host.file("/etc/inittab")
    if inittab.exists:
        for line in inittab.content_string.splitlines():
            if (
                not line.lstrip().startswith("#")
                and "getty" in line
                and ("hvc0" in line or "xvc0" in line)
            ):
                leftovers.append(f"inittab: {line.strip()}")
    for console in ("hvc0", "xvc0"):
        unit = f"/etc/systemd/system/getty.target.wants/serial-getty@{console}.service"
        if target.host.file(unit).exists:
            leftovers.append(f"{unit} is enabled")
    assert not leftovers, f"{target.spec.name}: Xen leftovers: {leftovers}"


def test_serial_getty(target):
    _kvm(target)
    if not target.spec.serial_console:
        pytest.skip(f"{target.spec.name}: serial_console is off in the inventory")
    # By terminal, not by arguments: systemd's serial-getty passes the tty as stdin ("-").
    gettys = target.host.run("ps -e -o tty= -o comm= | grep -E '^ttyS0 +a?getty'")
    assert gettys.rc == 0, (
        f"{target.spec.name}: no getty runs on ttyS0 (virsh console has no login)"
        + target.excerpt("ps -e -o tty= -o args= | grep [g]etty")
    )


def test_fstab_mounted(target):
    """Every fstab entry is mounted (swap: active, if swap was active before)."""
    fstab = target.host.file("/etc/fstab").content_string
    swap_before = target.baseline is None or bool(target.baseline.swaps)
    missing = []
    for line in fstab.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[0].startswith("#") or "noauto" in fields[3].split(","):
            continue
        spec, mountpoint, fstype = fields[0], fields[1], fields[2]
        if fstype == "swap" and swap_before:
            device = target.host.run(
                'readlink -f "$(findfs %s 2>/dev/null || echo %s)"', spec, spec
            ).stdout.strip()
            active = target.host.run("readlink -f $(awk 'NR>1 {print $1}' /proc/swaps)")
            if device not in active.stdout.split():
                missing.append(f"swap {spec}")
        elif (
            fstype != "swap"
            and mountpoint.startswith("/")
            and fstype not in ("proc", "sysfs", "tmpfs")
            and not target.host.mount_point(mountpoint).exists
        ):
            missing.append(mountpoint)
    assert not missing, (
        f"{target.spec.name}: fstab entries not mounted: {missing}"
        + target.excerpt("findmnt --fstab --evaluate")
    )


def test_root_read_write(target):
    options = target.host.mount_point("/").options
    assert "rw" in options, f"{target.spec.name}: / is mounted {','.join(options)}"


def test_architecture(target):
    """The userland is the planned architecture and the kernel is the planned one: its own
    for its architecture on KVM, its new dom0's on Xen."""
    arch, machine = target.now.arch, target.now.kernel_machine
    # On KVM its own kernel, for its architecture. Rehomed on Xen, its new dom0's kernel,
    # which a 32-bit userland may see through the 32-bit personality (linux32); that it is
    # the dom0's very kernel is test_kernel.py's topic.
    expected = {KERNEL_MACHINE.get(target.spec.arch)}
    if target.kvm is None:
        expected.add(target.dom0_arch)
    assert arch == target.spec.arch and machine in expected, (
        f"{target.spec.name}: planned {target.spec.arch} with a {' or '.join(sorted(expected))} "
        "kernel, found "
        f"{arch} with a {machine} kernel ({target.now.kernel_release})"
    )


def test_clock(target):
    """The guest's clock is within 5 s of this machine's."""
    before = time.time()
    found = float(target.host.run("date +%s.%N").stdout.strip())
    after = time.time()
    drift = min(abs(found - before), abs(found - after))
    assert drift <= 5, f"{target.spec.name}: the clock is {found - after:+.1f} s off"
