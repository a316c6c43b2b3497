"""
To another dom0, staying on Xen (``rehome_to``): the field report's second part, 32-bit
domUs onto a 64-bit dom0. An LV per old LV on the new dom0 (same name and size, in its
``vg``; without ``vg`` they must exist), the same filesystem with the same UUID and label,
mounted as the guest's tree while it is filled; then its Xen config there, with the new
LVs and the new dom0's own kernel and initrd. In the guest, every run: the modules of
that kernel, pushed when its architecture differs from the kernel's (``kernel.modules``).
"""

from __future__ import annotations

import posixpath
from io import StringIO
from typing import TYPE_CHECKING, ClassVar

from pyinfra import inventory
from pyinfra.api.exceptions import OperationError
from pyinfra.operations import files

from facts.xen import XenInfo
from operations import disk, kernel, lvm, preflight
from operations.util.facts import fact
from tasks import steps
from tasks.destinations import Destination
from tasks.destinations.kvm import without_key
from xen2kvm import journal, paths, planner, rehome, requirements
from xen2kvm.errors import Xen2KvmError
from xen2kvm.inventory import Fleet, Guest, XenHost
from xen2kvm.planner import SourceVolume
from xen2kvm.xenconfig import XenDomain

if TYPE_CHECKING:
    from tasks.move import Move


def new_devices(move: Move) -> dict[str, str]:
    """Old LV -> new LV, for every disk of the guest."""
    vg = dom0(move).vg
    return {v.device: rehome.target_device(v.device, vg) for v in move.volumes}


def new_features(move: Move, volume: SourceVolume) -> tuple[str, ...] | None:
    """The features a new ext LV's filesystem is made with: its source's (same size), not
    the new dom0's mke2fs defaults, which the guest's own e2fsck may not read
    (``xen2kvm.filesystems``); None when they were not read (mkfs's defaults)."""
    try:
        return planner.new_features(volume, volume.size)
    except ValueError as exc:
        raise OperationError(f"{move.guest.name}: {volume.device}: {exc}") from None


def dom0(move: Move) -> XenHost:
    spec = move.dest_spec
    assert isinstance(spec, XenHost)
    return spec


def config_path(move: Move) -> str:
    """The guest's Xen config on the new dom0: its old file name, in that dom0's dir."""
    return f"{dom0(move).xen_config_dir}/{posixpath.basename(move.guest.xen_config)}"


class Dom0(Destination):
    kind = "dom0"
    complete = journal.REHOME_COMPLETE
    answering = journal.GUEST_ANSWERING
    fixup_paths: ClassVar[dict[str, tuple[str, ...]]] = {
        "migration-key": ("/root/.ssh/authorized_keys",)
    }
    copy_prefix = "rehome-"
    connect_timeout = 300
    dest_role = requirements.REHOME
    guest_role = requirements.REHOME_GUEST

    def host(self, guest: Guest) -> str:
        return str(guest.rehome_to)

    def spec(self, fleet: Fleet, guest: Guest) -> XenHost:
        return fleet.xen_hosts[str(guest.rehome_to)]

    def state_dir(self, fleet: Fleet, guest: Guest) -> str:
        return paths.DOM0_STATE

    def plan(
        self, fleet: Fleet, guest: Guest, domain: XenDomain, volumes: list[SourceVolume]
    ) -> None:
        """No new disk to plan (the LVs are copied one for one); a guest that boots its
        own kernel is refused here, while planning (it would be at its cutover)."""
        rehome.check_rehomable(guest.name, domain)
        return None

    def makes_lvs(self, move: Move) -> bool:
        return bool(move.dest_spec.vg)  # without one, its admin made them beforehand

    def check(self, moves: list[Move]) -> None:
        """Its mke2fs makes the new LVs' ext filesystems with their sources' features."""
        made = {}
        for move in moves:
            if move.migrated:
                continue
            for volume in move.volumes:
                features = new_features(move, volume)
                if features is not None:
                    made[f"{move.guest.name} {volume.mountpoint}"] = (volume.fstype, list(features))
        if made:
            preflight.ext_features(
                name=f"dom0 {moves[0].dest} makes the guests' ext filesystems", filesystems=made
            )

    def under(self, move: Move) -> str:
        return f"on {move.dest}"

    def where(self, move: Move) -> str:
        return f"Xen on {move.dest}"

    def prepare(self, move: Move) -> None:
        """Every run, also after the move: the dom0's kernel may have changed since."""
        kernel.modules(
            name=f"{move.guest.name}: modules of {move.dest}'s kernel",
            dom0=move.dest,
            packages=dom0(move).modules_packages,
        )

    def build(self, move: Move) -> None:
        guest, new = move.guest, dom0(move)
        for volume in move.volumes:
            device = new_devices(move)[volume.device]
            if new.vg:
                lvm.logical_volume(
                    name=f"{guest.name}: LV {device} on {new.name}",
                    vg=new.vg,
                    lv=device.rsplit("/", 1)[-1],
                    size=volume.size,
                )
            features = new_features(move, volume)
            made = planner.made_with(volume.fstype, features)
            disk.filesystem(
                name=f"{guest.name}: {volume.fstype} on {device}{made}",
                device=device,
                fstype=volume.fstype,
                uuid=volume.uuid,  # the source's, as the plan inputs hold them
                label=volume.label,
                features=features,  # and an ext one's features: the guest's e2fsck reads them
            )
        self.open(move)

    def open(self, move: Move) -> None:
        self._mounts(move, mounted=True)

    def fixups(self, move: Move, window: bool = False) -> None:
        # Nothing else changes: it boots as it did, with new LVs.
        without_key(move, **steps.if_touched(move, "migration-key", window))

    def close(self, move: Move) -> None:
        self._mounts(move, mounted=False)

    def _mounts(self, move: Move, mounted: bool) -> None:
        mounts = [
            (volume.mountpoint, new_devices(move)[volume.device]) for volume in move.filesystems
        ]
        if not mounted:
            label = f"{move.guest.name}: its new LVs unmounted on {move.dest}"
            steps.tree_unmounted(label, move.tree, mounts)
            return
        for mountpoint, device in mounts:
            disk.mount(
                name=f"{move.guest.name}: mount {mountpoint} of its new LV on {move.dest}",
                device=device,
                path=paths.below(move.tree, mountpoint),
                options=disk.TREE_OPTIONS,
                root=move.tree,
            )

    def end_state(self, move: Move) -> None:
        guest, config = move.guest, config_path(move)
        files.put(
            name=f"{guest.name}: Xen config on {move.dest} (new LVs, the dom0's kernel)",
            src=StringIO(self._config(move)),
            dest=config,
            mode="0644",
        )
        steps.xen_state(move, move.dest, config, running=True)

    def _config(self, move: Move) -> str:
        release = fact(inventory.get_host(move.dest), XenInfo).get("release")
        source = f"{move.source.name}:{move.guest.xen_config}"
        try:
            rehome.check_release(release)
            return rehome.rehome_config(move.xen_config, release, new_devices(move), source)
        except (Xen2KvmError, ValueError) as exc:
            raise OperationError(f"{move.dest}: {exc}") from None

    def stopped(self, move: Move) -> None:
        steps.xen_state(move, move.dest, config_path(move), running=False)
        self.close(move)

    def not_running(self, move: Move) -> None:
        preflight.xen_stopped(
            name=f"{move.guest.name}: not running on {move.dest} (split-brain guard)",
            guest=move.xen_domain,
            xen_host=move.dest,
        )
