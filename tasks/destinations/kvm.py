"""
To a KVM host: the field report's first part. A new disk per guest (a host LV with an
MBR table, ``/boot`` on p1 and the guest's own VG on p2: "Matryoshka", or plain
partitions), mapped with ``kpartx`` and mounted as the guest's tree while it is filled;
the in-place fix-ups (fstab, udev, grub, serial getty) after each copy; a libvirt domain.
In the guest beforehand: a kernel, grub and lvm2, with virtio in its initramfs.
"""

from __future__ import annotations

from io import StringIO
from typing import TYPE_CHECKING, ClassVar

from pyinfra.operations import apt, files, server
from pyinfra.operations.util import any_changed

from operations import baseline, disk, guestfix, libvirt, lvm, preflight, sync
from tasks import steps
from tasks.destinations import Destination
from xen2kvm import journal, paths, render, requirements
from xen2kvm.devices import mapping_path
from xen2kvm.filesystems import EXT
from xen2kvm.inventory import Fleet, Guest, KvmHost
from xen2kvm.planner import GuestPlan, SourceVolume, made_with, plan_guest
from xen2kvm.xenconfig import XenDomain

if TYPE_CHECKING:
    from tasks.move import Move

INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "virtio_net", "dm-mod")
# The packages prepare downloads are deleted once installed (only those: apt removes what
# it fetched in that run): tens of MiB in the guest's /var/cache/apt that every copy
# would otherwise carry to the new disk.
KEEP_NO_DEBS = "-o APT::Keep-Downloaded-Packages=false"


def parents_first(mountpoint: str) -> tuple[bool, int, str]:
    """Sort key for mount points: ``/`` first, then each parent before its children."""
    return (mountpoint != "/", mountpoint.count("/"), mountpoint)


def mount_order(plan: GuestPlan) -> list[tuple[str, str]]:
    """(mount point, device on the KVM host) for the new disk, parents before children."""
    mounts = []
    for volume in plan.volumes:
        if volume.mountpoint is None:
            continue
        mounts.append((volume.mountpoint, device(plan, volume)))
    mounts.append(("/boot", mapping_path(plan.disk_path, 1)))
    return sorted(mounts, key=lambda item: parents_first(item[0]))


def device(plan: GuestPlan, volume) -> str:
    """A filesystem's device on the KVM host: an LV of the guest VG, or a partition."""
    if plan.layout == "matryoshka":
        return volume.device
    return mapping_path(plan.disk_path, volume.partition or 0)


class Kvm(Destination):
    kind = "kvm"
    complete = journal.CUTOVER_COMPLETE
    answering = journal.KVM_ANSWERING
    copy_prefix = ""
    # The files xen2kvm writes whole in the new tree: no copy may overwrite or delete them.
    own_files = (
        "/etc/fstab",
        "/etc/udev/rules.d/70-persistent-net.rules",
        "/etc/default/grub.d/xen2kvm.cfg",
        "/boot/grub/",
        f"{guestfix.GETTY_WANTS}/serial-getty@ttyS0.service",
    )
    # The Xen console gettys the serial-console fix-up takes out: were they copied, each
    # copy would bring them back, and the fix-up would run again in every window.
    left_out = tuple(
        f"{guestfix.GETTY_WANTS}/serial-getty@{console}.service"
        for console in guestfix.XEN_CONSOLES
    )
    # Each fix-up and what in the tree it depends on: in the cutover, one runs again only
    # when a copy since the last fix-ups changed that (tasks.steps.if_touched).
    fixup_paths: ClassVar[dict[str, tuple[str, ...]]] = {
        "fstab": ("/etc/fstab",),
        "net-rules": ("/etc/udev/rules.d/70-persistent-net.rules",),
        "grub-settings": ("/etc/default/grub.d/xen2kvm.cfg",),
        "serial-console": ("/etc/inittab", "/etc/systemd/system/getty.target.wants"),
        "migration-key": ("/root/.ssh/authorized_keys",),
        "bootloader": ("/boot",),
    }
    connect_timeout = 600
    dest_role = requirements.KVM_HOST
    guest_role = requirements.GUEST
    installs_kernel = True

    def host(self, guest: Guest) -> str:
        return str(guest.kvm_host)

    def spec(self, fleet: Fleet, guest: Guest) -> KvmHost:
        return fleet.kvm_hosts[str(guest.kvm_host)]

    def state_dir(self, fleet: Fleet, guest: Guest) -> str:
        return self.spec(fleet, guest).state_dir

    def plan(
        self, fleet: Fleet, guest: Guest, domain: XenDomain, volumes: list[SourceVolume]
    ) -> GuestPlan:
        return plan_guest(guest, self.spec(fleet, guest), domain, volumes)

    def under(self, move: Move) -> str:
        return "under KVM"

    def where(self, move: Move) -> str:
        return "KVM"

    def filesystems(self, move: Move) -> list[str]:
        return ["ext4", *(volume.fstype for volume in move.need_plan().volumes)]  # /boot too

    def copied(self, move: Move) -> list[str]:
        # The Xen guest's /boot is a directory of its root filesystem.
        return [point for point, _device in mount_order(move.need_plan()) if point != "/boot"]

    def check(self, moves: list[Move]) -> None:
        """Room in the host VG, libvirt, the bridges its NICs join; and no VG of another's
        named as a guest VG this run will map here (a complete move's disk is not mapped
        again)."""
        kvm = moves[0].dest_spec
        assert isinstance(kvm, KvmHost)
        preflight.kvm_host(
            name=f"KVM host {kvm.name} is ready",
            vg=kvm.vg,
            bridge=kvm.bridge,
            planned_lvs={m.need_plan().host_lv: m.need_plan().host_lv_size for m in moves},
            check_bridge=kvm.libvirt_uri.startswith("qemu:///"),
            uri=kvm.libvirt_uri,
            guest_vgs=guest_vgs(moves),
            bridges=sorted({nic.bridge for m in moves for nic in m.need_plan().domain.nics}),
        )
        made = {}
        for move in moves:
            if move.migrated:
                continue
            plan, name = move.need_plan(), move.guest.name
            made[f"{name} /boot"] = ("ext4", list(plan.boot_features))
            for volume in plan.volumes:
                if volume.fstype in EXT and volume.features is not None:
                    made[f"{name} {volume.mountpoint}"] = (volume.fstype, list(volume.features))
        if made:
            preflight.ext_features(
                name=f"KVM host {kvm.name} makes the guests' ext filesystems", filesystems=made
            )

    def prepare(self, move: Move) -> None:
        """A kernel for its architecture, grub-pc, lvm2, and an initramfs with virtio and
        device-mapper drivers: built at native speed, harmless on Xen (the field report:
        the guest simply ignores them).

        The initramfs settings go in before the packages: installing a kernel, lvm2 or
        initramfs-tools builds the initramfs (their dpkg hooks and triggers), with the
        settings already there. It is rebuilt here only when the settings changed and
        none of those was installed (``update-initramfs`` takes tens of seconds a guest).
        """
        if move.migrated or move.cutover_started:  # nothing to add once it is being moved
            return
        guest = move.guest
        settings = [
            files.put(
                name=f"{guest.name}: initramfs waits for no resume device (the Xen swap name)",
                src=StringIO("RESUME=none\n"),
                dest="/etc/initramfs-tools/conf.d/resume",
            )
        ]
        for module in INITRAMFS_MODULES:
            settings.append(
                files.line(
                    name=f"{guest.name}: initramfs loads {module}",
                    path="/etc/initramfs-tools/modules",
                    line=module,
                )
            )
        building = apt.packages(
            name=f"{guest.name}: kernel, initramfs-tools and lvm2 for booting under KVM",
            packages=[move.need_plan().kernel_package, "initramfs-tools", "lvm2"],
            no_recommends=True,
            update=True,
            cache_time=3600,
            extra_install_args=KEEP_NO_DEBS,
        )
        apt.packages(
            # and what net.arp_announce runs after the cutover: arping (Habets': -U -i), ip
            name=f"{guest.name}: grub-pc, rsync, arping and iproute2",
            packages=["grub-pc", "rsync", "arping", "iproute2"],
            no_recommends=True,
            cache_time=3600,
            extra_install_args=KEEP_NO_DEBS,
        )
        settings_changed = any_changed(*settings)
        server.shell(
            name=f"{guest.name}: rebuild the initramfs",
            commands=["update-initramfs -u -k all"],
            _if=lambda: settings_changed() and not building.did_change(),
        )

    def build(self, move: Move) -> None:
        guest, plan = move.guest, move.need_plan()
        kvm = move.dest_spec
        assert isinstance(kvm, KvmHost)
        lv = plan.disk_path
        preflight.domain_stopped(
            name=f"{guest.name}: its KVM domain does not run",
            domain=plan.domain.name,
            uri=uri(move),
        )
        lvm.logical_volume(
            name=f"{guest.name}: host LV {lv}", vg=kvm.vg, lv=plan.host_lv, size=plan.host_lv_size
        )
        disk.partition_table(
            name=f"{guest.name}: partition table on {lv}", device=lv, partitions=plan.partitions
        )
        disk.partition_mappings(name=f"{guest.name}: map the partitions of {lv}", device=lv)
        # /boot has no source: the root filesystem's features, which the guest's grub and
        # e2fsck read (planner.boot_features), never this host's mke2fs defaults.
        disk.filesystem(
            name=f"{guest.name}: /boot filesystem ({plan.boot_made_as})",
            device=mapping_path(lv, 1),
            fstype="ext4",
            uuid=plan.boot_uuid,
            label="boot",
            options=guest.mkfs_options.get("ext4"),
            features=plan.boot_features,
        )
        if plan.layout == "matryoshka" and plan.guest_vg:
            lvm.volume_group(
                name=f"{guest.name}: guest VG {plan.guest_vg}",
                vg=plan.guest_vg,
                devices=[mapping_path(lv, 2)],
            )
            for volume in plan.volumes:
                lvm.logical_volume(
                    name=f"{guest.name}: guest LV {volume.name}",
                    vg=plan.guest_vg,
                    lv=volume.name,
                    size=volume.size,
                )
            lvm.volume_group_active(
                name=f"{guest.name}: guest VG {plan.guest_vg} active", vg=plan.guest_vg
            )
        for volume in plan.volumes:
            where = device(plan, volume)
            # The source's UUID and label (the plan inputs hold them), so the guest's
            # UUID= and LABEL= fstab entries name it as before; an ext one's features, so
            # the guest's own e2fsck and grub read it.
            made = made_with(volume.fstype, volume.features)
            disk.filesystem(
                name=f"{guest.name}: {volume.fstype} on {where}{made}",
                device=where,
                fstype=volume.fstype,
                uuid=volume.source.uuid,
                label=volume.source.label,
                options=guest.mkfs_options.get(volume.fstype),
                features=volume.features,
            )
        self._mount_tree(move)

    def open(self, move: Move) -> None:
        """The new disk mapped, its guest VG active and its tree mounted (all noops when the
        presync left it so; a run picking up an interrupted cutover needs them again). Only
        while its KVM domain does not run: never mount a running guest's disk. Its domain
        is defined here, before the downtime, but never autostarted while Xen runs the
        guest (a reboot of the KVM host would start a second copy): the window's start
        only sets autostart and starts it."""
        plan, guest = move.need_plan(), move.guest
        preflight.domain_stopped(
            name=f"{guest.name}: its KVM domain does not run",
            domain=plan.domain.name,
            uri=uri(move),
        )
        libvirt.domain(
            name=f"{guest.name}: KVM domain defined, not autostarted (its guest runs on Xen)",
            domain=plan.domain.name,
            xml=domain_xml(move),
            defined=True,
            autostart=False,
            uri=uri(move),
        )
        disk.partition_mappings(
            name=f"{guest.name}: map the partitions of {plan.disk_path}", device=plan.disk_path
        )
        if plan.layout == "matryoshka" and plan.guest_vg:
            lvm.volume_group_active(
                name=f"{guest.name}: guest VG {plan.guest_vg} active", vg=plan.guest_vg
            )
        self._mount_tree(move)

    def _mount_tree(self, move: Move) -> None:
        for mountpoint, where in mount_order(move.need_plan()):
            disk.mount(
                name=f"{move.guest.name}: mount {mountpoint} of the new disk",
                device=where,
                path=paths.below(move.tree, mountpoint),
                options=disk.TREE_OPTIONS,
                root=move.tree,
            )

    def fixups(self, move: Move, window: bool = False) -> None:
        guest, plan, tree = move.guest, move.need_plan(), move.tree

        def when(name: str) -> dict:
            return steps.if_touched(move, name, window)

        guestfix.tree_file(
            name=f"{guest.name}: fstab with the new device names",
            root=tree,
            path="/etc/fstab",
            content=render.fstab(plan, list(move.fstab)),
            **when("fstab"),
        )
        guestfix.tree_file(
            name=f"{guest.name}: persistent-net rules on the planned MACs",
            root=tree,
            path="/etc/udev/rules.d/70-persistent-net.rules",
            content=render.persistent_net_rules(plan),
            **when("net-rules"),
        )
        guestfix.tree_file(
            name=f"{guest.name}: grub settings (serial console, eth names)",
            root=tree,
            path="/etc/default/grub.d/xen2kvm.cfg",
            content=render.grub_defaults(plan),
            **when("grub-settings"),
        )
        guestfix.serial_console(
            name=f"{guest.name}: getty on ttyS0, none on hvc0",
            root=tree,
            **when("serial-console"),
        )
        without_key(move, **when("migration-key"))
        guestfix.bootloader(
            name=f"{guest.name}: grub on the new disk",
            root=tree,
            disk=plan.disk_path,
            boot_uuid=plan.boot_uuid,
            root_device=render.root_device(plan),
            cmdline=render.kernel_cmdline(plan),
            serial_console=plan.domain.serial_console,
            **when("bootloader"),
        )

    def caught_up(self, move: Move) -> None:
        # The baseline was taken in the guest before the catch-up, which brought it.
        self._keep_baseline(move)

    def _keep_baseline(self, move: Move) -> None:
        baseline.filed(
            name=f"{move.guest.name}: its baseline kept with the journal",
            guest=move.guest.name,
            root=move.tree,
            state_dir=move.state_dir,
        )

    def close(self, move: Move) -> None:
        guest, plan = move.guest, move.need_plan()
        if move.cutover_started:  # an earlier run's window, resumed: no catch-up kept it
            self._keep_baseline(move)
        steps.tree_unmounted(f"{guest.name}: the new disk unmounted", move.tree, mount_order(plan))
        if plan.guest_vg:
            lvm.volume_group_active(
                name=f"{guest.name}: guest VG {plan.guest_vg} inactive on the host",
                vg=plan.guest_vg,
                active=False,
            )
        disk.partition_mappings(
            name=f"{guest.name}: unmap the partitions of {plan.disk_path}",
            device=plan.disk_path,
            mapped=False,
        )

    def start(self, move: Move) -> None:
        # Defined before the downtime (``open``); its autostart follows the start.
        self._domain(move, "KVM domain started", running=True)

    def end_state(self, move: Move) -> None:
        self._domain(
            move, "KVM domain defined, autostarted and running", running=True, autostart=True
        )

    def _domain(self, move: Move, what: str, running: bool, autostart: bool | None = None) -> None:
        plan = move.need_plan()
        libvirt.domain(
            name=f"{move.guest.name}: {what}",
            domain=plan.domain.name,
            xml=domain_xml(move),
            defined=True,
            autostart=autostart,
            running=running,
            uri=uri(move),
        )

    def watched(self, move: Move) -> dict[str, str]:
        return {"domain": move.guest.domain_name, "uri": uri(move)}

    def stopped(self, move: Move) -> None:
        libvirt.domain(
            name=f"{move.guest.name}: KVM domain stopped and undefined (disk kept)",
            domain=move.guest.domain_name,
            defined=False,
            uri=uri(move),
        )

    def not_running(self, move: Move) -> None:
        preflight.kvm_stopped(
            name=f"{move.guest.name}: not running on KVM (split-brain guard)",
            guest=move.guest.name,
            kvm_host=move.dest,
            domain=move.guest.domain_name,
            uri=uri(move),
        )


def guest_vgs(moves: list[Move]) -> dict[str, tuple[str, str]]:
    """``{guest: (its guest VG, the PV it is on)}`` of the moves whose disk this run may
    map on their KVM host (matryoshka, not complete): the PV is partition 2 of its disk,
    as kpartx maps it, where an earlier run made the VG."""
    found = {}
    for move in moves:
        plan = move.need_plan()
        if not move.migrated and plan.layout == "matryoshka" and plan.guest_vg:
            found[move.guest.name] = (plan.guest_vg, mapping_path(plan.disk_path, 2))
    return found


def domain_xml(move: Move) -> str:
    """The guest's libvirt domain, as ``templates/domain.xml.j2`` renders its plan."""
    guest = move.guest
    return render.domain_xml(move.need_plan().domain, guest.xen_host, guest.xen_config)


def uri(move: Move) -> str:
    """The KVM host's libvirt, as the inventory says (``libvirt_uri``): every virsh uses it."""
    kvm = move.dest_spec
    assert isinstance(kvm, KvmHost)
    return kvm.libvirt_uri


def without_key(move: Move, **when) -> None:
    """The destination's migration key taken out of the guest's new tree (the copy
    brought it along from the running guest's authorized_keys); ``when``: its ``_if``."""
    sync.access(
        name=f"{move.guest.name}: the migration key is not in the new tree",
        key_host=move.dest,
        key_path=move.key,
        from_address=move.address,
        present=False,
        authorized_keys="/root/.ssh/authorized_keys",
        tree=move.tree,
        **when,
    )
