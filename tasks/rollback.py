"""
rollback: back to Xen at any point after cutover began. The KVM domain is stopped and
undefined (its disk is kept), the Xen guest's autostart restored and the guest started
again (only once its KVM domain is seen stopped), its addresses announced, and the
migration key removed from it. The journal notes the rollback: a later run migrates the
guest afresh.
"""

from operations import flow, journal, libvirt, net, preflight, sync, xen
from tasks import common, steps
from xen2kvm import paths

role = common.role()

if role == "kvm_host":
    for item in common.work("kvm_host", need_plan=False):
        libvirt.domain(
            name=f"{item.guest.name}: KVM domain stopped and undefined (disk kept)",
            domain=item.guest.domain_name,
            defined=False,
        )

flow.barrier(name="rollback: the KVM domains are gone", label="KVM domains gone")

if role == "xen_host":
    for item in common.work("xen_host", need_plan=False):
        guest = item.guest
        lvs = steps.source_lvs(item)
        steps.source_mounts(guest, lvs, "not mounted on the dom0", mounted=False)
        preflight.kvm_stopped(
            name=f"{guest.name}: not running on KVM (split-brain guard)",
            guest=guest.name,
            kvm_host=guest.kvm_host,
            domain=item.guest.domain_name,
        )
        xen.autostart(
            name=f"{guest.name}: autostart on {item.xen.name} again",
            config=guest.xen_config,
            enabled=True,
        )
        xen.domain(
            name=f"{guest.name}: running on {item.xen.name} again",
            domain=guest.name,
            config=guest.xen_config,
            running=True,
        )

flow.barrier(name="rollback: the Xen guests are started", label="Xen guests started")

if role == "kvm_host":
    for item in common.work("kvm_host", need_plan=False):
        net.wait_for_port(
            name=f"{item.guest.name}: answers SSH on Xen again",
            address=item.guest.address,
            port=item.guest.ssh.port,
            timeout=300,
        )
        journal.milestone(
            name=f"{item.guest.name}: rolled back to Xen",
            guest=item.guest.name,
            step="rolled-back",
            state_dir=item.kvm.state_dir,
        )

flow.barrier(name="rollback: the Xen guests answer", label="Xen guests answer")

if role == "guest":
    for item in common.work("name", need_plan=False):
        steps.announce(item, "Xen")
        sync.access(
            name=f"{item.guest.name}: the migration key no longer reads it",
            key_host=item.kvm.name,
            key_path=paths.migration_key(item.kvm),
            from_address=common.kvm_address(item.kvm),
            present=False,
        )
