"""
A matryoshka disk on kvm1, handled by the tool's own operations as a migration does: a
host LV with an MBR table and a guest VG on its second partition, mapped and released.
``test_lab_kvm.py`` runs it over the lab's inventory (``--limit kvm1``) with
``--data x2k_disk=STATE``:

- ``made``: the LV, its table, the partitions mapped, the guest VG and an LV in it, then
  the VG deactivated and the disk unmapped
- ``cycle``: the disk mapped, then at once its VG deactivated and the disk unmapped, as a
  resumed cutover or a rollback does (on stock LVM, udev activates the guest VG by itself
  a moment after the mapping)
- ``absent``: released if need be, and the host LV removed
"""

from pyinfra import host

from operations import disk, lvm

LV = "/dev/vg0/x2kdisk"
GUEST_VG = "x2kdiskvg"
MIB = 1024 * 1024
PARTITIONS = [
    {"number": 1, "start": 2048, "size": 16384, "type": "83", "bootable": True},
    {"number": 2, "start": 18432, "size": 112640, "type": "8e"},
]

state = host.data.get("x2k_disk")
if state not in ("made", "cycle", "absent"):
    raise ValueError(f"--data x2k_disk=made|cycle|absent, not {state!r}")

if state in ("made", "cycle"):
    lvm.logical_volume(name="host LV", vg="vg0", lv="x2kdisk", size=64 * MIB)
    disk.partition_table(name="its table", device=LV, partitions=PARTITIONS)
    disk.partition_mappings(name="map it", device=LV)
if state == "made":
    lvm.volume_group(name="guest VG", vg=GUEST_VG, devices=["/dev/mapper/vg0-x2kdiskp2"])
    lvm.logical_volume(name="guest LV", vg=GUEST_VG, lv="root", size=16 * MIB)
lvm.volume_group_active(name="release the guest VG", vg=GUEST_VG, active=False)
disk.partition_mappings(name="unmap it", device=LV, mapped=False)
if state == "absent":
    lvm.logical_volume(name="no host LV", vg="vg0", lv="x2kdisk", present=False)
