"""
Steps shared by the phases (functions that define operations when called; nothing runs
on import, unlike the task files, which pyinfra executes as deploy code).
"""

from io import StringIO

from pyinfra import host, inventory
from pyinfra.facts.files import FileContents
from pyinfra.operations import files, python

from operations import disk, guestfix, journal, lvm, net, preflight, sync
from tasks import common
from xen2kvm import paths, render, runid

# The files xen2kvm writes whole in the new tree: no copy may overwrite or delete them.
OWN_FILES = (
    "/etc/fstab",
    "/etc/udev/rules.d/70-persistent-net.rules",
    "/etc/default/grub.d/xen2kvm.cfg",
    "/boot/grub/",
    "/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service",
)
# Never worth copying (kernel and runtime filesystems, should -x miss them).
RUNTIME = ("/proc/*", "/sys/*", "/dev/*", "/run/*", "/tmp/*", "/lost+found")  # noqa: S108


def host_keys(source: str) -> str:
    """known_hosts lines for a source, from its own host keys (read over pyinfra's SSH)."""
    other = inventory.get_host(source)
    address = other.data.get("ssh_hostname") or source
    lines = []
    for kind in ("ed25519", "ecdsa", "rsa"):
        key = other.get_fact(FileContents, path=f"/etc/ssh/ssh_host_{kind}_key.pub")
        if key:
            fields = key[0].split()
            lines.append(f"{address} {fields[0]} {fields[1]}")
    return "\n".join(lines) + "\n"


def trust_host_keys(item, source: str, why: str):
    """The KVM host's known_hosts for one source (the guest, or its dom0)."""
    files.put(
        name=f"{item.guest.name}: host keys of {source}, {why}",
        src=StringIO(host_keys(source)),
        dest=paths.known_hosts(item.kvm, source),
        mode="0600",
    )


def copy_steps(item, phase: str, source_host: str, source_address: str, source_base: str):
    """One rsync per filesystem of the guest, into the tree on this KVM host."""
    kvm, guest = item.kvm, item.guest
    tree = paths.target_root(kvm, guest)
    for mountpoint, _device in common.mount_order(item.plan):
        if mountpoint == "/boot":
            continue  # the Xen guest's /boot is a directory of its root filesystem
        excludes = OWN_FILES + RUNTIME if mountpoint == "/" else ("/lost+found",)
        sync.tree(
            name=f"{guest.name}: {phase} copy of {mountpoint}",
            guest=guest.name,
            step=f"{phase}:{mountpoint}",
            source=f"root@{source_address}:{paths.below(source_base, mountpoint).rstrip('/')}/",
            dest=f"{paths.below(tree, mountpoint).rstrip('/')}/",
            ssh_key=paths.migration_key(kvm),
            known_hosts=paths.known_hosts(kvm, source_host),
            state_dir=kvm.state_dir,
            excludes=list(excludes),
        )


def open_new_disk(item):
    """The new disk mapped, its guest VG active and its tree mounted (all noops when the
    presync left it so; a run picking up an interrupted cutover needs them again). Only
    while its KVM domain does not run: never mount a running guest's disk."""
    plan, guest = item.plan, item.guest
    preflight.domain_stopped(
        name=f"{guest.name}: its KVM domain does not run", domain=plan.domain.name
    )
    disk.partition_mappings(
        name=f"{guest.name}: map the partitions of {plan.disk_path}", device=plan.disk_path
    )
    if plan.layout == "matryoshka" and plan.guest_vg:
        lvm.volume_group_active(
            name=f"{guest.name}: guest VG {plan.guest_vg} active", vg=plan.guest_vg
        )
    mount_tree(item)


def mount_tree(item):
    """The new disk's filesystems mounted as the guest's tree on this KVM host."""
    tree = paths.target_root(item.kvm, item.guest)
    for mountpoint, device in common.mount_order(item.plan):
        disk.mount(
            name=f"{item.guest.name}: mount {mountpoint} of the new disk",
            device=device,
            path=paths.below(tree, mountpoint),
        )


def fixups(item):
    """The migrated guest's own files, in its new tree."""
    kvm, guest, plan = item.kvm, item.guest, item.plan
    tree = paths.target_root(kvm, guest)
    files.put(
        name=f"{guest.name}: fstab with the new device names",
        src=StringIO(render.fstab(plan, item.fstab)),
        dest=f"{tree}/etc/fstab",
    )
    files.put(
        name=f"{guest.name}: persistent-net rules on the planned MACs",
        src=StringIO(render.persistent_net_rules(plan)),
        dest=f"{tree}/etc/udev/rules.d/70-persistent-net.rules",
    )
    files.put(
        name=f"{guest.name}: grub settings (serial console, eth names)",
        src=StringIO(render.grub_defaults(plan)),
        dest=f"{tree}/etc/default/grub.d/xen2kvm.cfg",
        create_remote_dir=True,
    )
    guestfix.serial_console(name=f"{guest.name}: getty on ttyS0, none on hvc0", root=tree)
    sync.access(
        name=f"{guest.name}: the migration key is not in the new tree",
        key_host=kvm.name,
        key_path=paths.migration_key(kvm),
        from_address=common.kvm_address(kvm),
        present=False,
        authorized_keys=f"{tree}/root/.ssh/authorized_keys",
    )
    guestfix.bootloader(name=f"{guest.name}: grub on the new disk", root=tree, disk=plan.disk_path)


def reconnect(state, host):
    """The guest's SSH connection went with its old domain: open one to the new one."""
    host.disconnect()
    host.connect(raise_exceptions=True)


def source_lvs(item) -> list[tuple[str, str]]:
    """The stopped guest's filesystems as its dom0 mounts them for the final copy to KVM:
    (mountpoint, LV), parents before children."""
    volumes = common.filesystems(item.plan.volumes if item.plan else ())  # no plan: none
    return [(volume.mountpoint, volume.source.device) for volume in volumes]


def source_mounts(guest, lvs: list[tuple[str, str]], what: str, mounted: bool):
    """On the dom0: the stopped guest's LVs (``lvs``: mountpoint, LV; parents first)
    mounted read-only below its source root, or let go of, children first."""
    root = paths.source_root(guest)
    for mountpoint, device in lvs if mounted else reversed(lvs):
        disk.mount(
            name=f"{guest.name}: {mountpoint} {what}",
            device=device,
            path=paths.below(root, mountpoint),
            options="ro",
            mounted=mounted,
        )


def announce(item, where: str):
    """From inside the guest, wherever it now runs: take its addresses back."""
    python.call(name=f"{item.guest.name}: reconnect to the {where} guest", function=reconnect)
    net.arp_announce(
        name=f"{item.guest.name}: announce its addresses ({where})",
        addresses=list(item.guest.ips),
        interface=item.guest.interface,
    )


def guest_locks(held: bool):
    """On this KVM host: this run's lock on each guest it changes (see tasks/lock.py).

    A guest whose cutover is complete (as the run found it) is not locked: it gets only
    its end state, and a second run over a finished wave changes nothing. A rollback
    changes every guest it covers; a plan run only reads, so it takes none. Releasing
    covers every guest: a run of this controller
    that stopped once a guest's cutover was complete left a lock no later run takes.
    """
    if host.data.get("phase") == "plan":  # checks only: a plan run changes nothing
        return
    rollback = host.data.get("phase") == "rollback"
    for item in common.work("kvm_host", need_plan=not rollback):
        if held and item.migrated and not rollback:
            continue
        journal.lock(
            name=f"{item.guest.name}: {'locked for this run' if held else 'lock released'} "
            f"on {item.kvm.name}",
            guest=item.guest.name,
            owner=runid.run_id(),
            state_dir=item.kvm.state_dir,
            held=held,
        )
