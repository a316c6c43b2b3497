"""
rehome: the guests that move to another dom0 and stay on Xen (``rehome_to`` in the fleet
inventory; the field report's 32-bit domUs onto a 64-bit dom0). deploy.py includes this
file once per phase, with ``rehome_phase`` set:

- plan: the old dom0's config parses, the guest runs the planned userland.
- prepare: the modules of the new dom0's kernel in the guest (``kernel.modules``: pushed
  when its architecture differs from the kernel's, and again whenever that kernel changes;
  every run, also after the move).
- presync: the new LVs on the new dom0 (made in its ``vg``, or already there), the guest's
  filesystems on them (same UUIDs and labels), mounted, and a warm ``rsync --numeric-ids``
  from the running guest with the new dom0's own key.
- cutover: stop on the old dom0 and disable its autostart, mount its LVs read-only there,
  final copy, unmount, the guest's Xen config on the new dom0 (new LVs, the dom0's kernel
  and initrd), autostart there, start there (only once the old dom0 shows it stopped),
  announce its addresses.

A rehomed guest (``rehome-complete`` in its journal on the new dom0) gets only the
operations that hold its end state, and the modules push.

- lock / unlock: the run's lock on each guest it changes, on the new dom0 (as a KVM host
  holds its guests', ``tasks/lock.py``).
- rollback: stop it on the new dom0 and disable its autostart there, restore the autostart
  on the old dom0 and start it there (only once the new dom0 shows it stopped), announce
  its addresses. The old LVs were only ever read: the guest comes back as it was at the
  cutover (what it wrote on the new dom0 since stays on the new LVs only). The journal
  notes the rollback: a later run rehomes it afresh.
"""

from io import StringIO

from pyinfra import host, inventory
from pyinfra.api.exceptions import OperationError
from pyinfra.operations import files

from facts.disk import BlkidFilesystems
from facts.kernel import check_release
from facts.xen import XenInfo
from operations import baseline, disk, flow, journal, kernel, lvm, net, preflight, sync, xen
from tasks import common, steps
from xen2kvm import paths, rehome, runid
from xen2kvm.errors import Xen2KvmError

CONNECT_TIMEOUT = 300  # seconds for the guest to answer SSH on its new dom0

# Nothing at all (not even the barriers) in a run without rehomed guests.
phase = host.data.get("rehome_phase") if common.rehomes_in_run() else None


def new_devices(item) -> dict[str, str]:
    """Old LV -> new LV, for every disk of the guest."""
    return {v.device: rehome.target_device(v.device, item.new.vg) for v in item.volumes}


def filesystems(item) -> list:
    """The guest's filesystems (not swap), parents before children."""
    return common.filesystems(item.volumes)


def old_lvs(item) -> list[tuple[str, str]]:
    """Its filesystems' LVs on the old dom0: (mountpoint, LV), parents before children."""
    return [(volume.mountpoint, volume.device) for volume in filesystems(item)]


def new_config_path(item) -> str:
    return f"{item.new.xen_config_dir}/{item.guest.xen_config.rsplit('/', 1)[-1]}"


def new_config(item) -> str:
    release = inventory.get_host(item.new.name).get_fact(XenInfo).get("release")
    try:
        check_release(release)
        return rehome.rehome_config(
            item.xen_config, release, new_devices(item), f"{item.old.name}:{item.guest.xen_config}"
        )
    except (Xen2KvmError, ValueError) as exc:
        raise OperationError(f"{item.new.name}: {exc}") from None


def copy(item, step: str, source_host: str, address: str, base: str):
    tree = rehome.target_root(item.guest.name)
    for volume in filesystems(item):
        excludes = steps.RUNTIME if volume.mountpoint == "/" else ("/lost+found",)
        sync.tree(
            name=f"{item.guest.name}: {step} copy of {volume.mountpoint} to {item.new.name}",
            guest=item.guest.name,
            step=f"rehome-{step}:{volume.mountpoint}",
            source=f"root@{address}:{paths.below(base, volume.mountpoint).rstrip('/')}/",
            dest=f"{paths.below(tree, volume.mountpoint).rstrip('/')}/",
            ssh_key=rehome.migration_key(),
            known_hosts=rehome.known_hosts(source_host),
            state_dir=paths.DOM0_STATE,
            excludes=list(excludes),
            until=rehome.REHOME_COMPLETE,
        )


def trust(item, source: str, why: str):
    files.put(
        name=f"{item.guest.name}: host keys of {source} on {item.new.name}, {why}",
        src=StringIO(steps.host_keys(source)),
        dest=rehome.known_hosts(source),
        mode="0600",
    )


def new_mounts(item, mounted: bool):
    tree = rehome.target_root(item.guest.name)
    volumes = filesystems(item) if mounted else list(reversed(filesystems(item)))
    for volume in volumes:
        disk.mount(
            name=f"{item.guest.name}: {'mount' if mounted else 'unmount'} {volume.mountpoint} "
            f"of its new LV on {item.new.name}",
            device=new_devices(item)[volume.device],
            path=paths.below(tree, volume.mountpoint),
            mounted=mounted,
        )


def old_end_state(item):
    xen.autostart(
        name=f"{item.guest.name}: no autostart on {item.old.name}",
        config=item.guest.xen_config,
        enabled=False,
    )
    xen.domain(
        name=f"{item.guest.name}: stopped on {item.old.name}",
        domain=item.guest.name,
        config=item.guest.xen_config,
        running=False,
    )


def new_end_state(item):
    config = new_config_path(item)
    files.put(
        name=f"{item.guest.name}: Xen config on {item.new.name} (new LVs, the dom0's kernel)",
        src=StringIO(new_config(item)),
        dest=config,
        mode="0644",
    )
    xen.autostart(
        name=f"{item.guest.name}: autostart on {item.new.name}",
        config=config,
        enabled=True,
    )
    preflight.xen_stopped(
        name=f"{item.guest.name}: not running on {item.old.name} (split-brain guard)",
        guest=item.guest.name,
        xen_host=item.old.name,
    )
    xen.domain(
        name=f"{item.guest.name}: running on {item.new.name}",
        domain=item.guest.name,
        config=config,
        running=True,
    )


role = common.role()

if phase in ("lock", "unlock") and role == "xen_host":
    rollback = host.data.get("phase") == "rollback"
    for item in common.rehomes("rehome_to"):
        if item.rehomed and not rollback:
            continue
        held = phase == "lock"
        journal.lock(
            name=f"{item.guest.name}: {'locked for' if held else 'released by'} this run "
            f"on {item.new.name}",
            guest=item.guest.name,
            owner=runid.run_id(),
            state_dir=paths.DOM0_STATE,
            held=held,
        )

if phase == "plan":
    if role == "xen_host":
        for item in common.rehomes("xen_host"):
            preflight.xen_config(
                name=f"Xen config of {item.guest.name} parses",
                guest=item.guest.name,
                path=item.guest.xen_config,
            )
    if role == "guest":
        for item in common.rehomes("name"):
            preflight.guest(name=f"{item.guest.name} answers", arch=item.guest.arch)

if phase == "prepare" and role == "guest":
    for item in common.rehomes("name"):
        kernel.modules(
            name=f"{item.guest.name}: modules of {item.new.name}'s kernel",
            dom0=item.new.name,
            packages=item.new.modules_packages,
        )

if phase == "presync":
    if role == "xen_host":
        todo = [item for item in common.rehomes("rehome_to") if not item.rehomed]
        if todo:
            journal.tool(name="x2k-journal, the migration journal's tool")
            sync.key(name="the migration key", path=rehome.migration_key())

    flow.barrier(name="rehome presync: the migration keys exist", label="rehome keys")

    if role == "guest":
        for item in common.rehomes("name"):
            if not item.rehomed:
                sync.access(
                    name=f"{item.guest.name}: {item.new.name} may read it with rsync",
                    key_host=item.new.name,
                    key_path=rehome.migration_key(),
                    from_address=item.new.migration_address or item.new.address,
                    root="/",
                )

    flow.barrier(name="rehome presync: the guests let their new dom0 read them", label="access")

    if role == "xen_host":
        for item in common.rehomes("rehome_to"):
            if item.rehomed:
                continue
            guest = item.guest
            blkid = inventory.get_host(item.old.name).get_fact(
                BlkidFilesystems, devices=[v.device for v in item.volumes]
            )
            for volume in item.volumes:
                device = new_devices(item)[volume.device]
                if item.new.vg:
                    lvm.logical_volume(
                        name=f"{guest.name}: LV {device} on {item.new.name}",
                        vg=item.new.vg,
                        lv=device.rsplit("/", 1)[-1],
                        size=volume.size,
                    )
                found = blkid.get(volume.device, {})
                disk.filesystem(
                    name=f"{guest.name}: {volume.fstype} on {device}",
                    device=device,
                    fstype=volume.fstype,
                    uuid=found.get("UUID"),
                    label=found.get("LABEL"),
                )
            new_mounts(item, mounted=True)
            trust(item, guest.name, "for the copies")
            copy(item, "presync", guest.name, guest.migration_address or guest.address, "")

if phase == "cutover":
    # 0. The guest's baseline for the verify suite (it travels with the final copy).
    if role == "guest":
        for item in common.rehomes("name"):
            if not item.rehomed:
                baseline.capture(name=f"{item.guest.name}: baseline before the rehome")

    if role == "xen_host":
        for item in common.rehomes("rehome_to"):
            if not item.rehomed:
                journal.milestone(
                    name=f"{item.guest.name}: downtime starts (stop on {item.old.name})",
                    guest=item.guest.name,
                    step=common.DOWNTIME_START,
                    state_dir=paths.DOM0_STATE,
                )

    flow.barrier(name="rehome: downtime starts", label="rehome downtime starts")

    # 1. Stop on the old dom0: the downtime starts.
    if role == "xen_host":
        for item in common.rehomes("xen_host"):
            old_end_state(item)

    flow.barrier(name="rehome: the guests are stopped", label="rehome stopped")

    # 2. Its LVs read-only on the old dom0, readable by the new dom0's key.
    if role == "xen_host":
        for item in common.rehomes("xen_host"):
            if item.rehomed:
                continue
            lvs = old_lvs(item)
            steps.source_mounts(item.guest, lvs, f"read-only on {item.old.name}", mounted=True)
            sync.access(
                name=f"{item.guest.name}: {item.new.name} may read the stopped guest",
                key_host=item.new.name,
                key_path=rehome.migration_key(),
                from_address=item.new.migration_address or item.new.address,
                root=paths.source_base(),
            )

    flow.barrier(name="rehome: the old LVs are mounted read-only", label="rehome old LVs ro")

    # 3. The final copy on the new dom0, then its new LVs let go.
    if role == "xen_host":
        for item in common.rehomes("rehome_to"):
            if item.rehomed:
                continue
            trust(item, item.old.name, "for the final copy")
            address = item.old.migration_address or item.old.address
            copy(item, "cutover", item.old.name, address, f"/{item.guest.name}")
            new_mounts(item, mounted=False)

    flow.barrier(name="rehome: the final copies are done", label="rehome copies done")

    # 4. The old dom0 lets go of the LVs and of the key.
    if role == "xen_host":
        for item in common.rehomes("xen_host"):
            if item.rehomed:
                continue
            lvs = old_lvs(item)
            steps.source_mounts(item.guest, lvs, f"unmounted on {item.old.name}", mounted=False)
            sync.access(
                name=f"{item.guest.name}: the key of {item.new.name} no longer reads the dom0",
                key_host=item.new.name,
                key_path=rehome.migration_key(),
                from_address=item.new.migration_address or item.new.address,
                root=paths.source_base(),
                present=False,
            )

    flow.barrier(name="rehome: the old dom0s let go", label="rehome old LVs free")

    # 5. Its config, autostart and start on the new dom0 (once the old one shows it stopped).
    if role == "xen_host":
        for item in common.rehomes("rehome_to"):
            new_end_state(item)
        for item in common.rehomes("rehome_to"):
            if not item.rehomed:
                net.wait_for_port(
                    name=f"{item.guest.name}: answers SSH on {item.new.name}",
                    address=item.guest.address,
                    port=item.guest.ssh.port,
                    timeout=CONNECT_TIMEOUT,
                )
                journal.milestone(
                    name=f"{item.guest.name}: downtime ends (SSH answers on {item.new.name})",
                    guest=item.guest.name,
                    step=rehome.GUEST_ANSWERING,
                    state_dir=paths.DOM0_STATE,
                )

    flow.barrier(name="rehome: the guests answer on their new dom0", label="rehome answering")

    # 6. From inside the guest: take its addresses back; then the journal says it is done.
    if role == "guest":
        for item in common.rehomes("name"):
            if not item.rehomed:
                steps.announce(item, f"Xen on {item.new.name}")
                sync.access(
                    name=f"{item.guest.name}: the key of {item.new.name} no longer reads it",
                    key_host=item.new.name,
                    key_path=rehome.migration_key(),
                    from_address=item.new.migration_address or item.new.address,
                    present=False,
                )

    flow.barrier(name="rehome: addresses announced", label="rehome announced")

    if role == "xen_host":
        for item in common.rehomes("rehome_to"):
            journal.milestone(
                name=f"{item.guest.name}: rehome to {item.new.name} complete",
                guest=item.guest.name,
                step=rehome.REHOME_COMPLETE,
                state_dir=paths.DOM0_STATE,
                requires=[item.guest.name],  # it announced its addresses in this run
            )

if phase == "rollback":
    # 1. Stopped on the new dom0, and no autostart there.
    if role == "xen_host":
        for item in common.rehomes("rehome_to"):
            xen.domain(
                name=f"{item.guest.name}: stopped on {item.new.name}",
                domain=item.guest.name,
                config=new_config_path(item),
                running=False,
            )
            xen.autostart(
                name=f"{item.guest.name}: no autostart on {item.new.name}",
                config=new_config_path(item),
                enabled=False,
            )
            new_mounts(item, mounted=False)

    flow.barrier(name="rehome rollback: stopped on the new dom0s", label="rehome back: stopped")

    # 2. Back on the old dom0 (only once the new one shows it stopped).
    if role == "xen_host":
        for item in common.rehomes("xen_host"):
            lvs = old_lvs(item)
            steps.source_mounts(item.guest, lvs, f"not mounted on {item.old.name}", mounted=False)
            preflight.xen_stopped(
                name=f"{item.guest.name}: not running on {item.new.name} (split-brain guard)",
                guest=item.guest.name,
                xen_host=item.new.name,
            )
            xen.autostart(
                name=f"{item.guest.name}: autostart on {item.old.name} again",
                config=item.guest.xen_config,
                enabled=True,
            )
            xen.domain(
                name=f"{item.guest.name}: running on {item.old.name} again",
                domain=item.guest.name,
                config=item.guest.xen_config,
                running=True,
            )

    flow.barrier(name="rehome rollback: started on the old dom0s", label="rehome back: started")

    if role == "xen_host":
        for item in common.rehomes("rehome_to"):
            net.wait_for_port(
                name=f"{item.guest.name}: answers SSH on {item.old.name} again",
                address=item.guest.address,
                port=item.guest.ssh.port,
                timeout=CONNECT_TIMEOUT,
            )
            journal.milestone(
                name=f"{item.guest.name}: rolled back to {item.old.name}",
                guest=item.guest.name,
                step="rolled-back",
                state_dir=paths.DOM0_STATE,
            )

    flow.barrier(name="rehome rollback: the guests answer", label="rehome back: answering")

    if role == "guest":
        for item in common.rehomes("name"):
            steps.announce(item, f"Xen on {item.old.name}")
            sync.access(
                name=f"{item.guest.name}: the key of {item.new.name} no longer reads it",
                key_host=item.new.name,
                key_path=rehome.migration_key(),
                from_address=item.new.migration_address or item.new.address,
                present=False,
            )
