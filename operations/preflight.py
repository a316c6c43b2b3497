"""
Checks before a wave changes anything: each raises ``OperationError`` naming the host,
the guest and the cause, or reports (``host.noop``) that all is ready. They never change
a host.
"""

from __future__ import annotations

from pyinfra import host, inventory, logger
from pyinfra.api import OperationError, OperationValueError, operation
from pyinfra.facts.files import Directory

from facts.commands import NAME, CommandsMissing
from facts.debian import DebianArchitecture, DpkgPackageStates, OsRelease
from facts.disk import BlockDeviceIds, Mke2fsFeatures
from facts.journal import MigrationJournal, MigrationJournals
from facts.libvirt import LibvirtDomains, uri_problem
from facts.lvm import LvmLogicalVolumes, LvmPhysicalVolumes, LvmVolumeGroups
from facts.xen import XenConfigFile, XenDomainDisks, XenDomains
from operations.util.checks import check_bool, check_domain, check_guest, check_path
from operations.util.facts import fact
from xen2kvm.devices import device_aliases
from xen2kvm.downtime import INTEGRITY, Peers, project
from xen2kvm.errors import XenConfigError
from xen2kvm.filesystems import EXT, mkfs_option
from xen2kvm.guestkinds import (
    INITRAMFS_TOOLS,
    initramfs_problem,
    kvm_boot_note,
    rehome_boot_problem,
    userland,
    xen_boot,
)
from xen2kvm.inventory import GUEST_ARCHES
from xen2kvm.units import human
from xen2kvm.xenconfig import parse_xen_config


def _runs(info: dict | None) -> bool:
    """Whether a libvirt domain (as LibvirtDomains gives it) is anything but shut off."""
    return bool(info) and info.get("state") not in ("shut off", None)


def _at(uri: str | None) -> dict[str, str]:
    """The libvirt facts' arguments for ``uri`` (none without one: virsh's default)."""
    if uri_problem(uri):
        raise OperationValueError(str(uri_problem(uri)))
    return {} if uri is None else {"uri": str(uri)}


def _names(**names: str) -> None:
    for label, value in names.items():
        if not isinstance(value, str) or not value or value.startswith("-"):
            raise OperationValueError(f"{label} must be a name, not {value!r}")


@operation()
def commands(needs: dict[str, str]):
    """
    Check this host has every command (or file) a role needs, before anything changes: one
    refusal lists each missing one with its fix, rather than a run that fails halfway (a
    missing ``kpartx`` reads as "no partitions").

    + needs: ``{command or absolute path: the fix}``, as ``xen2kvm.requirements.needs``
      gives them (``{"kpartx": "apt-get install kpartx"}``)

    **Example:**

    .. code:: python

        preflight.commands(needs={"kpartx": "apt-get install kpartx",
                                  "rsync": "apt-get install rsync"})
    """
    if not isinstance(needs, dict) or not needs:
        raise OperationValueError(f"needs must map commands to their fix, not {needs!r}")
    for name, fix in needs.items():
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise OperationValueError(f"not a command name nor an absolute path: {name!r}")
        if not isinstance(fix, str) or not fix.strip():
            raise OperationValueError(f"{name}: its fix must be said, not {fix!r}")
    missing = fact(host, CommandsMissing, names=list(needs))
    if missing:
        raise OperationError(
            "\n".join(f"{host.name}: {name} is missing: {needs[name]}" for name in missing)
        )
    host.noop(f"{', '.join(needs)} are present")
    yield from ()  # a check: never a command


def _check_guest_vgs(guest_vgs: object) -> dict[str, tuple[str, str]]:
    if not isinstance(guest_vgs, dict):
        raise OperationValueError(
            f"guest_vgs must map each guest to its VG and that VG's PV, not {guest_vgs!r}"
        )
    checked = {}
    for guest_name, pair in guest_vgs.items():
        check_guest(guest_name)
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise OperationValueError(
                f"guest_vgs: {guest_name}: give its VG and that VG's PV, not {pair!r}"
            )
        _names(guest_vg=pair[0])
        checked[guest_name] = (pair[0], check_path(f"guest_vgs: {guest_name}: PV", pair[1]))
    return checked


def _not_on(pvs: dict, vg: str, own: str) -> list[str]:
    """The PVs of ``vg`` that are not ``own`` (in any of its names), as ``pvs`` names them."""
    return sorted(
        name for name, pv in pvs.items() if pv["vg"] == vg and name not in device_aliases(own)
    )


@operation()
def kvm_host(
    vg: str,
    bridge: str,
    planned_lvs: dict[str, int] | None = None,
    check_bridge: bool = True,
    uri: str | None = None,
    guest_vgs: dict[str, tuple[str, str]] | None = None,
    bridges: list[str] | None = None,
):
    """
    Check a KVM host is ready to receive guests: its volume group exists with room for
    them, no other VG there has a name of the guests' own VGs, its libvirt answers and its
    bridges exist.

    + vg: the host volume group the guests' disks go in
    + bridge: the bridge the guests' NICs join
    + planned_lvs: the guests' LVs in ``vg`` and their planned sizes in bytes (what is
      not there yet, or smaller, must fit in the free space)
    + check_bridge: whether the bridges are on this host (not so when libvirt is remote)
    + uri: the libvirt the guests go to (``virsh -c URI``); ``None``: virsh's default
    + guest_vgs: ``{guest: (its guest VG, the PV it is made on)}`` for the matryoshka
      guests whose disks this run maps here (the PV: partition 2 of the guest's disk as
      kpartx maps it). A VG of that name on any other PV is refused: once the disk is
      mapped, LVM would see two VGs of one name and act on neither by it. The guest's
      own VG, left mapped by an earlier run, is on that PV: it is not refused.
    + bridges: every bridge the guests' NICs join (``bridge`` and those the KVM host's
      ``bridges`` map sends vifs to); each must exist too

    **Example:**

    .. code:: python

        preflight.kvm_host(
            vg="vg0",
            bridge="br0",
            planned_lvs={"web1": 8 * 1024**3},
            guest_vgs={"web1": ("web1", "/dev/mapper/vg0-web1p2")},
        )
    """
    planned_lvs = planned_lvs or {}
    guest_vgs = _check_guest_vgs(guest_vgs or {})
    at = _at(uri)
    bad = {lv: size for lv, size in planned_lvs.items() if not isinstance(size, int) or size < 1}
    if bad:
        raise OperationValueError(f"planned LV sizes must be positive byte counts: {bad}")
    groups = fact(host, LvmVolumeGroups)
    if vg not in groups:
        known = ", ".join(sorted(groups)) or "none"
        raise OperationError(f"{host.name}: volume group {vg} not found (found: {known})")
    free = groups[vg]["free"]
    existing = fact(host, LvmLogicalVolumes)
    need_bytes = sum(
        max(0, size - existing.get(f"{vg}/{lv}", {}).get("size", 0))
        for lv, size in planned_lvs.items()
    )
    if need_bytes > free:
        raise OperationError(
            f"{host.name}: volume group {vg} has {human(free)} free, the wave needs "
            f"{human(need_bytes)} more: grow {vg} (vgextend) or move fewer of its guests "
            "in this wave"
        )
    for guest_name, (guest_vg, own) in sorted(guest_vgs.items()):
        if guest_vg not in groups:  # no PV of it visible (pvs is read only when one is)
            continue
        pvs = fact(host, LvmPhysicalVolumes)
        others = _not_on(pvs, guest_vg, own)
        if others or not any(pv["vg"] == guest_vg for pv in pvs.values()):
            raise OperationError(
                f"{host.name}: {guest_name}: guest_vg: a VG named {guest_vg} is already on "
                f"{host.name} (on {', '.join(others) or 'no PV pvs shows'}), not on the "
                f"guest's own disk ({own}): with its disk mapped, LVM would see two VGs "
                f"named {guest_vg} and act on neither by name: set another guest_vg: for "
                f"{guest_name} in the inventory"
            )
    fact(host, LibvirtDomains, **at)  # fails the fact (and the run) when libvirt does not answer
    every = [bridge, *sorted(set(bridges or ()) - {bridge})]
    for name in every if check_bridge else ():
        if not fact(host, Directory, path=f"/sys/class/net/{name}/bridge"):
            raise OperationError(f"{host.name}: bridge {name} does not exist")
    noun, verb = ("bridges", "are") if len(every) > 1 else ("bridge", "is")
    state = "up" if check_bridge else "libvirt's to check"
    where = f"{noun} {', '.join(every)} {verb} {state}"
    named = f", no other VG is named {', '.join(sorted({v for v, _ in guest_vgs.values()}))}"
    host.noop(f"{vg} has {human(free)} free{named if guest_vgs else ''}, libvirt answers, {where}")
    yield from ()  # a check: never a command


@operation()
def ext_features(filesystems: dict[str, tuple[str, list[str]]]):
    """
    Check this host's ``mke2fs`` makes each new ext filesystem with the features it is to
    have (its source's, ``xen2kvm.filesystems.mkfs_features``), before anything changes:
    an older e2fsprogs than the guest's refuses features it does not know (Debian 11's
    1.46.2 has no ``orphan_file``, which Debian 13 makes by default), and presync's mkfs
    would stop there. Each refusal names the filesystem, the host's e2fsprogs and the
    features it does not know. ``mke2fs -n`` is asked (it makes nothing), once for each
    distinct set.

    + filesystems: ``{what: (ext2, ext3 or ext4, its features)}``, ``what`` as a
      refusal names it (``web1 /var``)

    **Example:**

    .. code:: python

        preflight.ext_features(
            filesystems={"web1 /": ("ext4", ["has_journal", "extent", "orphan_file"])},
        )
    """
    if not isinstance(filesystems, dict) or not filesystems:
        raise OperationValueError(
            f"filesystems must map each to its type and features, not {filesystems!r}"
        )
    for what, made in filesystems.items():
        if (
            not isinstance(made, tuple | list)
            or len(made) != 2
            or made[0] not in EXT
            or not isinstance(made[1], list | tuple)
            or not all(isinstance(f, str) and f and f.isprintable() for f in made[1])
        ):
            raise OperationValueError(f"{what}: not an ext type and its features: {made!r}")
    refused = []
    for what, (fstype, features) in filesystems.items():
        found = fact(host, Mke2fsFeatures, features=list(features), fstype=fstype)
        if found is None:  # the commands check names it, with its fix
            host.noop("no mke2fs here to ask")
            return
        if found["accepts"]:
            continue
        known = found.get("known")
        unknown = [f for f in features if known is not None and f not in known]
        e2fsprogs = f"e2fsprogs {found.get('version') or '(version not said)'}"
        why = (
            f"does not know {', '.join(unknown)}"
            if unknown
            else f"refuses mke2fs -n -t {fstype} -O {mkfs_option(features)}"
        )
        refused.append(
            f"{host.name}: {what}: its {fstype} is made with its source's features, and this "
            f"host's {e2fsprogs} {why}: move it to a host with an e2fsprogs as new as its "
            "source's (or install one here)"
        )
    if refused:
        raise OperationError("\n".join(refused))
    sets = len({(fstype, tuple(features)) for fstype, features in filesystems.values()})
    host.noop(f"mke2fs makes the {len(filesystems)} ext filesystems ({sets} feature sets)")
    yield from ()  # a check: never a command


@operation()
def xen_config(guest: str, path: str, rehome: bool = False):
    """
    Check a guest's Xen config exists on its dom0 and parses, and that its move can boot
    it: a guest that boots its own kernel (pygrub, pvgrub) moves to KVM (said), but is
    not rehomed (``xen2kvm.guestkinds``).

    + guest: the guest's name (for messages)
    + path: its config file on this dom0
    + rehome: whether it is rehomed onto another dom0 (``rehome_to``) rather than moved
      to KVM

    **Example:**

    .. code:: python

        preflight.xen_config(guest="web1", path="/etc/xen/web1.cfg")
    """
    check_bool("rehome", rehome)
    text = fact(host, XenConfigFile, path=path)
    if text is None:
        raise OperationError(f"{guest}: its Xen config {path} is not on {host.name}")
    try:
        domain = parse_xen_config(text, f"{host.name}:{path}")
    except XenConfigError as exc:
        raise OperationError(f"{guest}: {exc}") from None
    boot = xen_boot(domain)
    if rehome and (problem := rehome_boot_problem(boot)):
        raise OperationError(f"{guest}: rehome_to: {host.name}:{path}: {problem}")
    disks = ", ".join(disk.vdev for disk in domain.disks if not disk.cdrom)
    note = "" if rehome else kvm_boot_note(boot)
    said = f"{guest}: {path} parses ({domain.type}, {domain.memory_mib} MiB, disks {disks})"
    host.noop(f"{said}; it {note}" if note else said)
    yield from ()  # a check: never a command


@operation()
def guest(arch: str, installs_kernel: bool = True):
    """
    Check a guest answers and runs the userland the inventory says: a Debian release
    xen2kvm is made for (11, 12 or 13: ``xen2kvm.guestkinds.userland``; not Ubuntu) on
    the inventory's architecture; and, when its move installs a kernel, that it builds
    its initramfs with initramfs-tools, which that move installs, not with dracut
    (``xen2kvm.guestkinds.initramfs_problem``: dpkg's status file is read, no package
    tool runs).

    + arch: the dpkg architecture the inventory gives (``amd64`` or ``i386``)
    + installs_kernel: whether its move installs a Debian kernel in it (to KVM; a rehomed
      guest boots its new dom0's kernel)

    **Example:**

    .. code:: python

        preflight.guest(arch="i386")
    """
    if arch not in GUEST_ARCHES:
        raise OperationValueError(f"arch must be one of {', '.join(GUEST_ARCHES)}, not {arch!r}")
    check_bool("installs_kernel", installs_kernel)
    found = fact(host, DebianArchitecture)
    try:
        release = userland(fact(host, OsRelease) or {}, found, installs_kernel)
    except ValueError as exc:
        raise OperationError(f"{host.name}: {exc}") from None
    if found != arch:
        raise OperationError(f"{host.name}: the inventory says {arch}, the guest runs {found}")
    if installs_kernel:
        states = fact(host, DpkgPackageStates, packages=list(INITRAMFS_TOOLS))
        if problem := initramfs_problem(states):
            raise OperationError(f"{host.name}: {problem}")
    host.noop(f"{host.name} answers, {arch} userland, {release}")
    yield from ()  # a check: never a command


@operation()
def domain_stopped(domain: str, uri: str | None = None):
    """
    Check the KVM domain of a guest does not run: its disk may then be mapped, mounted and
    written on this host. Refuses (never stops the domain) when it runs.

    + domain: the libvirt domain
    + uri: the libvirt that runs it (``virsh -c URI``); ``None``: virsh's default

    **Example:**

    .. code:: python

        preflight.domain_stopped(domain="web1")
    """
    _names(domain=domain)
    info = fact(host, LibvirtDomains, **_at(uri)).get(domain)
    if _runs(info):
        raise OperationError(
            f"{host.name}: the KVM domain {domain} is {info['state']}: its disk is in use, "
            "so it is not touched (roll back first to migrate it again)"
        )
    host.noop(f"the KVM domain {domain} does not run")
    yield from ()  # a check: never a command


def _users(dom0, devices: list[str]) -> dict[str, list[str]]:
    """{device: the running domains that use it, sorted} on the dom0, by the device's
    number (one LV has several paths), by its path where it is no block device. Two
    commands however many domains run there: the cutover reads this inside its downtime."""
    domains = sorted(fact(dom0, XenDomainDisks).items())
    # sorted, each once: the same domains give the same arguments, one read per plan
    paths = tuple(sorted({*devices, *(disk for _, disks in domains for disk in disks)}))
    numbers = fact(dom0, BlockDeviceIds, devices=paths)

    def number(path: str) -> str:
        return numbers.get(path) or path

    wanted = {number(device): device for device in devices}
    found: dict[str, list[str]] = {}
    for domain, disks in domains:
        for disk in disks:
            device = wanted.get(number(disk))
            if device is not None and domain not in found.get(device, []):
                found.setdefault(device, []).append(domain)
    return found


def _stranger(users: dict[str, list[str]], domain: str) -> tuple[str, str] | None:
    """The first (device, user) of ``users`` whose user is not ``domain``: another domain
    on the same LV is found though ``domain`` uses it too."""
    return next(
        ((device, user) for device, found in users.items() for user in found if user != domain),
        None,
    )


def _check_devices(devices: object) -> list[str]:
    if not isinstance(devices, (list, tuple)) or not devices:
        raise OperationValueError(f"devices must be a list of the guest's LVs, not {devices!r}")
    for device in devices:
        check_path("devices", device)
    return list(devices)


@operation()
def source_unused(guest: str, domain: str, devices: list[str], running: bool = False):
    """
    Check no running Xen domain uses the guest's LVs on this dom0 (its own domain aside
    while ``running``), found by the devices themselves, whatever the domains are called:
    before the dom0 mounts them, and in the plan. A domain under a name xen2kvm does not
    know (renamed with ``xl rename``, or the inventory wrong) would survive the stop and
    run beside the KVM copy: it is refused, named, never stopped.

    + guest: the guest's inventory name (for the messages)
    + domain: its Xen domain's name, as xen2kvm stops it
    + devices: its LVs on this dom0 (every disk of its config, swap too)
    + running: its own domain may still use them (the plan, before the stop); when the
      dom0 is about to mount them, it may not

    **Example:**

    .. code:: python

        preflight.source_unused(
            guest="www.example.net",
            domain="www",
            devices=["/dev/xenvg/www-root", "/dev/xenvg/www-swap"],
        )
    """
    _names(guest=guest)
    check_domain(domain, "Xen")
    devices = _check_devices(devices)
    check_bool("running", running)
    users = _users(host, devices)
    if stranger := _stranger(users, domain):
        device, user = stranger
        raise OperationError(
            f"{host.name}: {device} of {guest} is in use by the running Xen domain "
            f"{user}, not by {domain}, the domain xen2kvm stops for it: {user} would "
            f"run on beside the KVM copy. If {user} is {guest}, set xen_domain: {user} "
            f"for it in the inventory; if not, {user} must not use {guest}'s LVs"
        )
    if users and not running and host.state.is_executing:
        device = next(iter(users))
        raise OperationError(
            f"{host.name}: {device} of {guest} is still in use by its Xen domain {domain}: "
            "the dom0 does not mount a running domain's LVs"
        )
    if users and not running:
        # Planning: the cutover stops it in an earlier operation; checked when this runs.
        host.noop(f"{domain} uses {guest}'s LVs now: checked again before they are mounted")
    elif users:
        host.noop(f"only {domain} uses {guest}'s LVs")
    else:
        host.noop(f"no running domain uses {guest}'s LVs")
    yield from ()  # a check: never a command


@operation()
def xen_stopped(guest: str, xen_host: str, devices: list[str] | None = None):
    """
    The split-brain guard: refuse unless the guest's Xen domain is stopped on its dom0,
    and no other domain there uses its LVs. Run on the KVM host just before the KVM domain
    starts.

    + guest: the guest's Xen domain name, as its config sets it (``xl list`` shows it)
    + xen_host: the inventory name of its dom0
    + devices: its LVs on the dom0: a domain that uses them under any other name refuses
      the start too

    **Example:**

    .. code:: python

        preflight.xen_stopped(guest="web1", xen_host="xen1", devices=["/dev/xenvg/web1-root"])
    """
    _names(guest=guest, xen_host=xen_host)
    dom0 = inventory.get_host(xen_host)
    users = _users(dom0, _check_devices(devices)) if devices is not None else {}
    if stranger := _stranger(users, guest):
        device, user = stranger
        raise OperationError(
            f"{device} on {xen_host} is in use by the running Xen domain {user} (the "
            f"guest's domain is {guest}): the KVM copy is not started while a Xen "
            "domain uses its disks"
        )
    running = fact(dom0, XenDomains)
    if guest in running and not host.state.is_executing:
        # Planning: the cutover stops it in an earlier operation; checked when this runs.
        host.noop(f"{guest} runs on {xen_host} now: checked again before the KVM start")
        return
    if guest in running:
        raise OperationError(
            f"{guest} still runs on {xen_host} ({running[guest]['state']}): "
            "the KVM copy is not started while the Xen one runs"
        )
    host.noop(f"{guest} does not run on {xen_host}")
    yield from ()  # a check: never a command


@operation()
def kvm_stopped(guest: str, kvm_host: str, domain: str, uri: str | None = None):
    """
    The split-brain guard for rollback: refuse unless the guest's KVM domain is stopped.
    Run on the dom0 just before the Xen domain starts again.

    + guest: the guest
    + kvm_host: the inventory name of its KVM host
    + domain: its libvirt domain
    + uri: the KVM host's libvirt (``virsh -c URI``); ``None``: virsh's default there

    **Example:**

    .. code:: python

        preflight.kvm_stopped(guest="web1", kvm_host="kvm1", domain="web1")
    """
    _names(guest=guest, kvm_host=kvm_host, domain=domain)
    info = fact(inventory.get_host(kvm_host), LibvirtDomains, **_at(uri)).get(domain)
    running = _runs(info)
    if running and not host.state.is_executing:
        # Planning: the rollback stops it in an earlier operation; checked when this runs.
        host.noop(f"{domain} runs on {kvm_host} now: checked again before the Xen start")
        return
    if running:
        raise OperationError(
            f"{guest}: its KVM domain {domain} is {info['state']} on {kvm_host}: "
            "the Xen copy is not started while the KVM one runs"
        )
    host.noop(f"the KVM domain of {guest} does not run on {kvm_host}")
    yield from ()  # a check: never a command


@operation()
def downtime(
    guest: str,
    state_dir: str,
    boot_time: int,
    budget: int | None = None,
    integrity: str = "staged",
    gate: bool = True,
    force: bool = False,
):
    """
    Project a guest's downtime from its journal on this host (its destination), and what
    the other guests' cutovers here measured, and, as the cutover's gate, refuse a cutover
    whose projection exceeds its budget. Changes nothing. The projection is made when this
    runs: after the warm copies of the same run; as the gate, it is printed then.

    + guest: the guest
    + state_dir: where its journal is, on this host
    + boot_time: seconds it takes to boot and answer SSH, until one boot was measured
    + budget: the longest downtime allowed, in seconds (None: no limit)
    + integrity: how its final copy is checked (``staged``, ``checksum``, ``metadata`` or
      ``skip``), a part of the window
    + gate: refuse over the budget, or with a budget and nothing to project from yet
      (False: only say it, as the plan does before the run's own warm copies)
    + force: start the cutover over the budget anyway (said as a warning)

    **Example:**

    .. code:: python

        preflight.downtime(guest="web1", state_dir="/var/lib/xen2kvm", boot_time=90,
                           budget=300)
    """
    check_guest(guest)
    check_path("state_dir", state_dir)
    check_bool("gate", gate)
    check_bool("force", force)
    for label, value in (("boot_time", boot_time), ("budget", budget)):
        if value is None and label == "budget":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OperationValueError(
                f"{label} must be a positive number of seconds, not {value!r}"
            )
    if integrity not in INTEGRITY:
        raise OperationValueError(
            f"integrity must be one of {', '.join(INTEGRITY)}, not {integrity!r}"
        )
    records = fact(host, MigrationJournal, state_dir=state_dir, guest=guest)
    peers = Peers.of(fact(host, MigrationJournals, state_dir=state_dir), besides=guest)
    projection = project(records, boot_time, integrity, peers)
    limit = f", budget {budget} s" if budget is not None else ""
    if projection is None:
        if gate and budget is not None and host.state.is_executing:
            raise OperationError(
                f"{host.name}: {guest}: no complete warm copy to project its downtime from"
                f"{limit}: the cutover is not started. Run presync first"
            )
        host.noop(f"{guest}: no projected downtime yet (no complete warm copy){limit}")
        return
    said = f"{guest}: {projection.describe()}{limit}"
    if budget is not None and projection.total > budget and gate:
        if not force:
            raise OperationError(
                f"{host.name}: {said}: over budget, the cutover is not started. Run presync "
                "again (a smaller last delta), raise downtime_budget, or start it anyway "
                "with --data force_downtime=true"
            )
        if not host.state.is_executing:
            logger.warning(f"{host.name}: {said}: over budget, started anyway (forced)")
    if gate and host.state.is_executing:
        # What the cutover starts on, in the run's output (its name is the plan's guess,
        # made before this run's warm copies).
        logger.info(f"{host.name}: {said}")
    host.noop(said)
    yield from ()  # a check: never a command
