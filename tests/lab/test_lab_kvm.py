"""The lab's KVM side: kvm1 (an emulated Debian KVM host) and the remote-libvirtd boot glue.

Pure parts (LV byte ranges, report parsing, the hook's disk selection) are tested first
without the lab. The ``lab`` tests then use the running kvm1 of ``XEN2KVM_LAB_PREFIX``
/ ``XEN2KVM_LAB_DIR``, or bring up the KVM side alone and take it down again at the end.
On kvm1 they build a small bootable disk in an LV the way the migration does (sfdisk,
kpartx, a guest VG, mkfs, grub-install in a chroot), boot it with ``virsh`` run ON kvm1,
reach it over SSH, and check that the bytes of kvm1's PV outside that LV did not change.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from xen2kvm.lab import kvmhost, outer_libvirt
from xen2kvm.lab.config import LabConfig
from xen2kvm.lab.outer_libvirt import LvRange, LvRangeError, lv_range

PVS = {"report": [{"pv": [{"pv_name": "/dev/vdb", "vg_name": "vg0", "pe_start": "1048576"}]}]}
VGS = {"report": [{"vg": [{"vg_name": "vg0", "vg_extent_size": "4194304"}]}]}


def _lvs(*rows: tuple[str, str, str]) -> dict[str, object]:
    lvs = [{"vg_name": "vg0", "lv_name": n, "seg_pe_ranges": r, "seg_count": c} for n, r, c in rows]
    return {"report": [{"lv": lvs}]}


def test_lv_range_is_pe_start_plus_first_extent() -> None:
    lvs = _lvs(("web1", "/dev/vdb:0-511", "1"), ("mail1", "/dev/vdb:512-767", "1"))
    got = lv_range(PVS, VGS, lvs, "vg0", "mail1")
    assert got == LvRange("vg0", "mail1", "/dev/vdb", 1048576 + 512 * 4194304, 256 * 4194304)


def test_lv_range_refuses_multi_segment_lv() -> None:
    lvs = _lvs(("web1", "/dev/vdb:0-9", "2"), ("web1", "/dev/vdb:20-29", "2"))
    with pytest.raises(LvRangeError, match="single-segment"):
        lv_range(PVS, VGS, lvs, "vg0", "web1")


def test_lv_range_names_a_missing_lv() -> None:
    with pytest.raises(LvRangeError, match="no LV vg0/nope"):
        lv_range(PVS, VGS, _lvs(), "vg0", "nope")


def test_parse_json_stream_reads_reports_one_after_another() -> None:
    text = json.dumps(PVS) + "\n" + json.dumps(VGS) + "\n  \n"
    assert outer_libvirt.parse_json_stream(text) == [PVS, VGS]


def test_hook_takes_only_lv_block_disks() -> None:
    xml = """<domain type='qemu'><name>g</name><devices>
      <disk type='block' device='disk'><source dev='/dev/vg0/web1'/></disk>
      <disk type='block' device='disk'><source dev='/dev/mapper/vg0-x'/></disk>
      <disk type='file' device='disk'><source file='/dev/vg0/file'/></disk>
      <disk type='block' device='disk'><source dev='/dev/sdb'/></disk>
    </devices></domain>"""
    assert outer_libvirt.block_disk_paths(xml) == [("vg0", "web1")]


def test_pv_disk_is_writeback_not_unsafe() -> None:
    cfg = LabConfig(root=Path("/nonexistent"), prefix="t")
    drives = [a for a in kvmhost.qemu_argv(cfg) if "id=pv" in a]
    assert drives == [f"file={kvmhost.pv_path(cfg)},format=raw,if=none,id=pv,cache=writeback"]


# -- on the lab ------------------------------------------------------------------------------

GUEST = "x2ktest"
GUEST_ADDRESS = "198.51.100.121"
GUEST_MAC = "52:54:00:51:64:79"
OTHER = "x2kother"

# Runs on kvm1: the steps the migration does, with kvm1's own root as the guest's content.
BUILD_GUEST = r"""
set -eu
NAME=$1 ADDR=$2 T=/mnt/$1 D=/dev/vg0/$1 P=/dev/mapper/vg0-$1p
lvcreate -q -y -W y -Z y -L 2G -n "$NAME" vg0
printf 'label: dos\nstart=2048, size=256MiB, type=83, bootable\ntype=8e\n' |
  sfdisk -q --no-reread --wipe always --wipe-partitions always "$D" 2>/dev/null
kpartx -a -s -p p "$D"
mkfs.ext4 -q -F -L boot "${P}1"
pvcreate -q -ff -y "${P}2"
vgcreate -q gvg "${P}2"
lvcreate -q -y -W y -l 100%FREE -n root gvg
mkfs.ext4 -q -F -L root /dev/gvg/root
mkdir -p "$T"; mount /dev/gvg/root "$T"; mkdir -p "$T/boot"; mount "${P}1" "$T/boot"
cp -ax /. "$T/"; cp -a /boot/. "$T/boot/"
echo "$NAME" > "$T/etc/hostname"
printf '127.0.0.1\tlocalhost\n%s\t%s\n' "$ADDR" "$NAME" > "$T/etc/hosts"
sed -i "s/198\.51\.100\.20\//$ADDR\//" "$T/etc/network/interfaces"
printf '/dev/mapper/gvg-root / ext4 errors=remount-ro 0 1\nUUID=%s /boot ext4 defaults 0 2\n' \
  "$(blkid -s UUID -o value "${P}1")" > "$T/etc/fstab"
rm -f "$T/etc/lvm/lvmlocal.conf" "$T/etc/libvirt/libvirt.conf" "$T"/etc/ssh/ssh_host_*
systemctl --root="$T" -q disable x2k-lab-vg0.service
dbus-uuidgen > "$T/etc/machine-id"
sed -i 's/^GRUB_CMDLINE_LINUX=.*/GRUB_CMDLINE_LINUX="console=ttyS0,115200 net.ifnames=0"/;
  s/^GRUB_TIMEOUT=.*/GRUB_TIMEOUT=0/' "$T/etc/default/grub"
printf 'GRUB_TERMINAL="serial console"\nGRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"\n' \
  >> "$T/etc/default/grub"
for f in dev dev/pts proc sys run; do mount --bind "/$f" "$T/$f"; done
chroot "$T" ssh-keygen -q -A
chroot "$T" grub-install --target=i386-pc "$D" 2>/dev/null
chroot "$T" update-grub 2>/dev/null
echo "HOSTKEY $(cut -d' ' -f1,2 "$T/etc/ssh/ssh_host_ed25519_key.pub")"
for f in run sys proc dev/pts dev boot ""; do umount "$T/$f"; done
vgchange -q -an gvg
kpartx -d -p p "$D"
sync
"""

DOMAIN_XML = f"""<domain type='qemu'>
  <name>{GUEST}</name>
  <memory unit='MiB'>512</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <boot dev='hd'/>
  </os>
  <features><acpi/><apic/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw'/>
      <source dev='/dev/vg0/{GUEST}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='bridge'>
      <mac address='{GUEST_MAC}'/>
      <source bridge='br0'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
  </devices>
</domain>
"""


def _skip_reason() -> str | None:
    if os.environ.get("XEN2KVM_SKIP_LAB") == "1":
        return "XEN2KVM_SKIP_LAB=1"
    if os.geteuid() != 0:
        return "the lab needs root"
    return None


@pytest.fixture(scope="module")
def kvm() -> Iterator[LabConfig]:
    """kvm1 up: the running one, or brought up here and taken down after the module."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    cfg = LabConfig.from_env()
    started = not kvmhost.status(cfg)["kvm1"]["running"]  # type: ignore[index]
    if started:
        kvmhost.up(cfg)
    try:
        yield cfg
    finally:
        if started:
            kvmhost.down(cfg)


def on_kvm(cfg: LabConfig, remote: str, **kw: object) -> subprocess.CompletedProcess[str]:
    argv = outer_libvirt.ssh_argv(cfg, kvmhost.ADDRESS, remote)
    return subprocess.run(argv, capture_output=True, text=True, timeout=600, check=False, **kw)


def _ranges(cfg: LabConfig) -> dict[str, LvRange]:
    opts = "--units b --nosuffix --reportformat json"
    out = on_kvm(
        cfg,
        f"pvs {opts} -o pv_name,vg_name,pe_start; vgs {opts} -o vg_name,vg_extent_size; "
        f"lvs {opts} -o vg_name,lv_name,seg_pe_ranges,seg_count vg0",
    ).stdout
    pvs, vgs, lvs = outer_libvirt.parse_json_stream(out)
    return {lv: lv_range(pvs, vgs, lvs, "vg0", lv) for lv in (GUEST, OTHER)}


def _digest(image: Path, spans: list[tuple[int, int]]) -> str:
    digest = hashlib.sha256()
    with image.open("rb") as fh:
        for offset, size in spans:
            fh.seek(offset)
            left = size
            while left:
                chunk = fh.read(min(left, 1 << 20))
                assert chunk, f"{image} ends before {offset + size}"
                digest.update(chunk)
                left -= len(chunk)
    return digest.hexdigest()


@dataclass
class GuestRun:
    build: subprocess.CompletedProcess[str]
    autoactivated: str
    manual_activation: subprocess.CompletedProcess[str]
    define: subprocess.CompletedProcess[str]
    start: subprocess.CompletedProcess[str]
    domstate: str
    ssh: subprocess.CompletedProcess[str] | None
    boot_seconds: float
    destroy: subprocess.CompletedProcess[str]
    loops_after: str
    outside_before: str
    outside_after: str


def _wait_guest_ssh(cfg: LabConfig, known: Path, timeout: float) -> subprocess.CompletedProcess:
    deadline = time.monotonic() + timeout
    remote = "hostname; findmnt -n -o SOURCE /; ip -4 -o addr show dev eth0"
    while True:
        argv = outer_libvirt.ssh_argv(cfg, GUEST_ADDRESS, remote, known_hosts=known)
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode == 0 or time.monotonic() > deadline:
            return proc
        time.sleep(2)


@pytest.fixture(scope="module")
def guest(kvm: LabConfig) -> Iterator[GuestRun]:
    """Build a disk in an LV on kvm1, boot it via virsh on kvm1, reach it, destroy it."""
    cfg = kvm
    cleanup = (
        f"virsh destroy {GUEST}; virsh undefine {GUEST}; vgchange -an gvg; "
        f"kpartx -d -p p /dev/vg0/{GUEST}; lvremove -y vg0/{GUEST} vg0/{OTHER}; true"
    )
    on_kvm(cfg, cleanup)
    try:
        build = on_kvm(cfg, f"bash -s {GUEST} {GUEST_ADDRESS}", input=BUILD_GUEST)
        # A second LV after the guest's, with data in it, to see that it stays untouched.
        other = on_kvm(cfg, f"udevadm settle; lvcreate -q -y -L 16M -n {OTHER} vg0 && "
                            f"head -c 16M /dev/urandom > /dev/vg0/{OTHER} && sync")  # fmt: skip
        assert other.returncode == 0, f"lvcreate {OTHER}: {other.stdout}{other.stderr}"
        # LVM on kvm1 must not autoactivate the guest's own VG when its disk is mapped ...
        active = on_kvm(cfg, f"kpartx -a -s -p p /dev/vg0/{GUEST}; udevadm settle; sleep 2; "
                             "lvs --noheadings -o lv_active gvg/root").stdout.strip()  # fmt: skip
        # ... but activates it when asked on purpose.
        manual = on_kvm(
            cfg, f"vgchange -ay gvg && vgchange -an gvg && kpartx -d -p p /dev/vg0/{GUEST}"
        )
        rng = _ranges(cfg)
        pv_image = kvmhost.pv_path(cfg)
        outside = [(0, rng[GUEST].offset), (rng[OTHER].offset, rng[OTHER].size)]
        before = _digest(pv_image, outside)
        hostkey = next(
            (line.split(None, 1)[1] for line in build.stdout.splitlines()
             if line.startswith("HOSTKEY ")), "",
        )  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            known = Path(tmp, "known_hosts")
            known.write_text(f"{GUEST_ADDRESS} {hostkey}\n")
            define = on_kvm(cfg, f"cat > /root/{GUEST}.xml && virsh define /root/{GUEST}.xml",
                            input=DOMAIN_XML)  # fmt: skip
            t0 = time.monotonic()
            start = on_kvm(cfg, f"virsh start {GUEST}")
            domstate = on_kvm(cfg, f"virsh domstate {GUEST}").stdout.strip()
            ssh = _wait_guest_ssh(cfg, known, 240) if start.returncode == 0 else None
            boot = time.monotonic() - t0
        destroy = on_kvm(cfg, f"virsh destroy {GUEST} && virsh undefine {GUEST}")
        loops = subprocess.run(["losetup", "-j", str(pv_image)], capture_output=True, text=True)
        after = _digest(pv_image, outside)
        print(f"guest {GUEST}: virsh start to SSH {boot:.0f}s")
        yield GuestRun(build, active, manual, define, start, domstate, ssh, boot, destroy,
                       loops.stdout, before, after)  # fmt: skip
    finally:
        on_kvm(cfg, cleanup)


@pytest.mark.lab
def test_kvm1_has_vg0(kvm: LabConfig) -> None:
    out = on_kvm(kvm, "vgs --reportformat json -o vg_name").stdout
    assert {"vg_name": "vg0"} in json.loads(out)["report"][0]["vg"]


@pytest.mark.lab
def test_virsh_on_kvm1_talks_to_the_remote_libvirtd(kvm: LabConfig) -> None:
    proc = on_kvm(kvm, "virsh uri && virsh list --all")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == outer_libvirt.URI


@pytest.mark.lab
def test_domain_xml_validates(tmp_path: Path) -> None:
    xml = tmp_path / "domain.xml"
    xml.write_text(DOMAIN_XML)
    proc = subprocess.run(["virt-xml-validate", str(xml), "domain"], capture_output=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.lab
def test_guest_disk_built_in_lv(guest: GuestRun) -> None:
    assert guest.build.returncode == 0, guest.build.stderr
    assert "HOSTKEY ssh-ed25519 " in guest.build.stdout


@pytest.mark.lab
def test_guest_vg_not_autoactivated_on_kvm1(guest: GuestRun) -> None:
    assert guest.autoactivated == ""


@pytest.mark.lab
def test_guest_vg_activates_on_purpose(guest: GuestRun) -> None:
    assert guest.manual_activation.returncode == 0, guest.manual_activation.stderr


@pytest.mark.lab
def test_virsh_define_and_start_on_kvm1(guest: GuestRun) -> None:
    assert guest.define.returncode == 0, guest.define.stderr
    assert guest.start.returncode == 0, guest.start.stderr
    assert guest.domstate == "running"


@pytest.mark.lab
def test_booted_guest_answers_ssh(guest: GuestRun) -> None:
    assert guest.ssh is not None and guest.ssh.returncode == 0, guest.ssh and guest.ssh.stderr
    hostname, root, addr = guest.ssh.stdout.splitlines()[:3]
    assert (hostname, root) == (GUEST, "/dev/mapper/gvg-root")
    assert f"{GUEST_ADDRESS}/24" in addr


@pytest.mark.lab
def test_destroy_detaches_the_loop_device(guest: GuestRun) -> None:
    assert guest.destroy.returncode == 0, guest.destroy.stderr
    assert guest.loops_after == ""


@pytest.mark.lab
def test_pv_bytes_outside_the_lv_unchanged(guest: GuestRun) -> None:
    assert guest.outside_after == guest.outside_before
