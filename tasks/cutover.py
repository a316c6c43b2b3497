"""
cutover: the downtime window, kept to what depends on the final delta. Stop the Xen guest
and its autostart, mount its LVs read-only on the dom0, copy the last changes, redo the
in-place fix-ups, unmount and unmap the new disk, then (only once Xen shows the guest
stopped) define, autostart and start the KVM domain, wait for it to answer and announce its
addresses from inside it.

A guest whose cutover is complete only gets the operations that hold its end state: a
scheduled ``--dry`` run then shows drift (an autostart link back on the dom0, an edited
domain) and nothing else.

A run interrupted inside the window is finished by the next: the journal says how far it
got (``downtime-start``: the guest may be stopped, so no warm copy and no new baseline;
``final-copy-done``: the new disk is complete and let go, only the KVM start is left). A
guest that cannot be reached then (stopped on Xen) does not stop the run; its cutover is
recorded complete only once it has announced its addresses from KVM.
"""

from operations import baseline, disk, flow, journal, libvirt, lvm, net, preflight, sync, xen
from tasks import common, steps
from tasks.steps import copy_steps, fixups
from xen2kvm import paths, render
from xen2kvm.baseline import GUEST_PATH

CONNECT_TIMEOUT = 600  # seconds for the KVM guest to answer SSH after its start


def xen_end_state(item):
    guest = item.guest
    xen.autostart(
        name=f"{guest.name}: no autostart on {item.xen.name}",
        config=guest.xen_config,
        enabled=False,
    )
    xen.domain(
        name=f"{guest.name}: stopped on {item.xen.name}",
        domain=guest.name,
        config=guest.xen_config,
        running=False,
    )


def kvm_end_state(item):
    guest, plan = item.guest, item.plan
    preflight.xen_stopped(
        name=f"{guest.name}: not running on Xen (split-brain guard)",
        guest=guest.name,
        xen_host=guest.xen_host,
    )
    libvirt.domain(
        name=f"{guest.name}: KVM domain defined, autostarted and running",
        domain=plan.domain.name,
        xml=render.domain_xml(plan.domain, guest.xen_host, guest.xen_config),
        defined=True,
        autostart=True,
        running=True,
    )


role = common.role()

# 0. The guest's baseline for the verify suite (it travels with the final copy), then note
#    when the downtime starts: right before the shutdown.
if role == "guest":
    for item in common.work("name"):
        if not item.cutover_started:  # taken once per attempt, before the guest stops
            baseline.capture(name=f"{item.guest.name}: baseline before the cutover")

if role == "kvm_host":
    for item in common.work("kvm_host"):
        if not item.migrated:
            journal.milestone(
                name=f"{item.guest.name}: downtime starts (Xen shutdown begins)",
                guest=item.guest.name,
                step=common.DOWNTIME_START,
                state_dir=item.kvm.state_dir,
            )

flow.barrier(name="cutover: downtime starts", label="downtime starts")

# 1. Stop on Xen: the downtime starts.
if role == "xen_host":
    for item in common.work("xen_host"):
        xen_end_state(item)

flow.barrier(name="cutover: the Xen guests are stopped", label="the Xen guests are stopped")

# 2. The stopped guest's LVs, read-only on the dom0, readable by the KVM host's key.
if role == "xen_host":
    for item in common.work("xen_host"):
        if item.migrated or item.final_copied:
            continue
        lvs = steps.source_lvs(item)
        steps.source_mounts(item.guest, lvs, "read-only on the dom0", mounted=True)
        sync.access(
            name=f"{item.guest.name}: {item.kvm.name} may read the stopped guest with rsync",
            key_host=item.kvm.name,
            key_path=paths.migration_key(item.kvm),
            from_address=common.kvm_address(item.kvm),
            root=paths.source_base(),
        )

flow.barrier(
    name="cutover: the source LVs are mounted read-only",
    label="the source LVs are mounted read-only",
)

# 3. The final copy and the fix-ups, then the new disk let go.
if role == "kvm_host":
    for item in common.work("kvm_host"):
        if item.migrated or item.final_copied:
            continue
        steps.open_new_disk(item)
        steps.trust_host_keys(item, item.xen.name, "for the final copy")
        copy_steps(
            item,
            "cutover",
            item.xen.name,
            item.xen.migration_address or item.xen.address,
            f"/{item.guest.name}",
        )
        fixups(item)
        tree = paths.target_root(item.kvm, item.guest)
        baseline.filed(
            name=f"{item.guest.name}: its baseline kept with the journal",
            guest=item.guest.name,
            source=paths.below(tree, GUEST_PATH),
            state_dir=item.kvm.state_dir,
        )
        for mountpoint, device in reversed(common.mount_order(item.plan)):
            disk.mount(
                name=f"{item.guest.name}: unmount {mountpoint} of the new disk",
                device=device,
                path=paths.below(tree, mountpoint),
                mounted=False,
            )
        if item.plan.guest_vg:
            lvm.volume_group_active(
                name=f"{item.guest.name}: guest VG {item.plan.guest_vg} inactive on the host",
                vg=item.plan.guest_vg,
                active=False,
            )
        disk.partition_mappings(
            name=f"{item.guest.name}: unmap the partitions of {item.plan.disk_path}",
            device=item.plan.disk_path,
            mapped=False,
        )
        journal.milestone(
            name=f"{item.guest.name}: the new disk is complete and let go",
            guest=item.guest.name,
            step=common.FINAL_COPY_DONE,
            state_dir=item.kvm.state_dir,
        )

flow.barrier(name="cutover: the final copies are done", label="the final copies are done")

# 4. The dom0 lets go of the stopped guest's LVs and of the key.
if role == "xen_host":
    for item in common.work("xen_host"):
        if item.migrated:
            continue
        lvs = steps.source_lvs(item)
        steps.source_mounts(item.guest, lvs, "unmounted on the dom0", mounted=False)
        sync.access(
            name=f"{item.guest.name}: the migration key no longer reads the dom0",
            key_host=item.kvm.name,
            key_path=paths.migration_key(item.kvm),
            from_address=common.kvm_address(item.kvm),
            root=paths.source_base(),
            present=False,
        )

flow.barrier(
    name="cutover: the dom0s let go of the source LVs",
    label="the dom0s let go of the source LVs",
)

# 5. Start on KVM once Xen shows the guest stopped (all of the wave's guests, then wait
#    for each: they boot side by side).
if role == "kvm_host":
    for item in common.work("kvm_host"):
        kvm_end_state(item)
    for item in common.work("kvm_host"):
        if not item.migrated:
            net.wait_for_port(
                name=f"{item.guest.name}: answers SSH under KVM",
                address=item.guest.address,
                port=item.guest.ssh.port,
                timeout=CONNECT_TIMEOUT,
            )
            journal.milestone(
                name=f"{item.guest.name}: downtime ends (SSH answers under KVM)",
                guest=item.guest.name,
                step="kvm-answering",
                state_dir=item.kvm.state_dir,
            )

flow.barrier(name="cutover: the KVM guests answer", label="the KVM guests answer")

# 6. From inside the KVM guest: take its addresses back.
if role == "guest":
    for item in common.work("name"):
        if item.migrated:
            continue
        steps.announce(item, "KVM")

flow.barrier(name="cutover: addresses announced", label="addresses announced")

if role == "kvm_host":
    for item in common.work("kvm_host"):
        journal.milestone(
            name=f"{item.guest.name}: cutover complete",
            guest=item.guest.name,
            step=common.CUTOVER_COMPLETE,
            state_dir=item.kvm.state_dir,
            requires=[item.guest.name],  # it announced its addresses in this run
        )
