"""The lab's KVM side: kvm1 (an emulated Debian KVM host) and the remote-libvirtd boot glue.

Pure parts (LV byte ranges, report parsing, the hook's disk selection) are tested first
without the lab. The ``lab`` tests then use the running kvm1 of ``XEN2KVM_LAB_PREFIX``
/ ``XEN2KVM_LAB_DIR``, or bring up the KVM side alone and take it down again at the end:
its VG, its virsh talking to the outer libvirtd. Guests booted from kvm1's LVs through
that glue are the migrations' (``test_migration.py``: every migrated guest boots so, and
a rollback checks that its domain's loop device went with it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.lab.conftest import LAB_CLI, Ssh, lab_skip_reason, wait_for_lab_up
from tests.lab.runs import LAB_INVENTORY, changed_operations, text
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

DOMAIN_XML = """<domain type='qemu'>
  <name>x2ktest</name>
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
      <source dev='/dev/vg0/x2ktest'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='bridge'>
      <mac address='52:54:00:51:64:79'/>
      <source bridge='br0'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
  </devices>
</domain>
"""


@pytest.fixture(scope="module")
def kvm(request: pytest.FixtureRequest) -> Iterator[LabConfig]:
    """kvm1 up: the running one, or brought up here and taken down after the module."""
    reason = lab_skip_reason()
    if reason:
        pytest.skip(reason)
    wait_for_lab_up(request.config)  # the session's own lab up, when one runs
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


# -- a guest's VG on kvm1's stock LVM ----------------------------------------------------------

GUEST_VG_DEPLOY = "tests/lab/deploys/guest_vg.py"


def _disk(state: str) -> subprocess.CompletedProcess[str]:
    """tests/lab/deploys/guest_vg.py over the lab's inventory, on kvm1 only."""
    command = [sys.executable, "-m", "pyinfra", "-y", LAB_INVENTORY, GUEST_VG_DEPLOY,
               "--limit", "kvm1", "--data", f"x2k_disk={state}"]  # fmt: skip
    return subprocess.run(
        [*LAB_CLI, "exec", "--", *command],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip


def _mappings(ssh: Ssh) -> list[str]:
    """kpartx's mappings of the disk's partitions, and the guest VG's LVs, on kvm1."""
    out = ssh("kvm1", "ls /dev/mapper").stdout.split()
    return sorted(name for name in out if name.startswith(("vg0-x2kdiskp", "x2kdiskvg-")))


# Udev's activation of a VG, held back 6 s as on a busy host: a release that does not wait
# for it finds the VG inactive, skips `vgchange -an`, and the activation lands after.
SLOW_ACTIVATION = "/run/systemd/system/lvm-activate-.service.d/x2k-slow.conf"


@pytest.mark.lab
def test_a_guest_vg_autoactivated_by_udev_is_released_every_time(lab, ssh: Ssh) -> None:
    """kvm1 runs Debian's own LVM settings (no auto_activation_volume_list): mapping a
    disk that holds a guest VG makes udev activate that VG by itself, a moment later. The
    tool's map and release at once (``kpartx -a``, ``vgchange -an``, ``kpartx -d``: what
    a resumed cutover or a rollback does) must still leave nothing mapped nor active."""
    stock = ssh("kvm1", "lvmconfig --typeconfig diff activation/auto_activation_volume_list")
    assert stock.returncode != 0 and "vg0" not in stock.stdout, stock.stdout

    made = _disk("made")
    assert made.returncode == 0, text(made)[-3000:]
    slow = ssh(
        "kvm1",
        f"mkdir -p {os.path.dirname(SLOW_ACTIVATION)} && "
        f"printf '[Service]\\nExecStartPre=/bin/sleep 6\\n' > {SLOW_ACTIVATION} && "
        "systemctl daemon-reload",
    )
    assert slow.returncode == 0, slow.stderr
    try:
        for _ in range(2):
            cycled = _disk("cycle")
            assert cycled.returncode == 0, text(cycled)[-3000:]
            # The release found the VG active: the mapping's wait saw udev's activation out.
            changed = " ".join(changed_operations(text(cycled)))
            assert all(step in changed for step in ("map it", "release", "unmap it")), changed
            assert _mappings(ssh) == []
    finally:
        ssh("kvm1", f"rm -rf {os.path.dirname(SLOW_ACTIVATION)} && systemctl daemon-reload")
        removed = _disk("absent")
    assert removed.returncode == 0, text(removed)[-3000:]
    assert _mappings(ssh) == []
    gone = ssh("kvm1", "lvs --noheadings -o lv_name vg0").stdout.split()
    assert "x2kdisk" not in gone
