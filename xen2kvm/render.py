"""Render the templates in ``templates/``: XML escaped, undefined values refused.

Everything that ends up on a host is rendered here: from a ``GuestPlan``, the libvirt
domain XML, the guest's new fstab, its grub drop-in and its persistent-net rules; and the
rsync module a source serves the migration key (``sync.access``).
"""

from __future__ import annotations

import re
from functools import lru_cache

import jinja2

from .errors import PlanError
from .filesystems import fstab_tag
from .fstab import FstabEntry, escape, rename_devices
from .planner import DomainPlan, GuestPlan
from .resources import templates_dir

TEMPLATES = templates_dir()
# What XML 1.0 cannot carry even escaped: C0 controls but tab/newline/return, lone
# surrogates (a file name that is not UTF-8) and the two non-characters U+FFFE/U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def templates(escaped: tuple[str, ...]) -> jinja2.Environment:
    """The Jinja templates of ``templates/``: values autoescaped in templates whose names
    end in ``escaped``, an undefined value an error."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=escaped),
        keep_trailing_newline=True,
    )


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = templates(("xml", "xml.j2"))
    env.filters["fstab"] = _fstab_field
    return env


def _fstab_field(value: object) -> str:
    text = str(value)
    if not text:
        raise ValueError("an fstab field cannot be empty")
    return escape(text)


def _render(name: str, **context: object) -> str:
    text = environment().get_template(name).render(**context)
    return text if text.endswith("\n") else text + "\n"


def domain_xml(dom: DomainPlan, xen_host: str, xen_config: str) -> str:
    """The libvirt domain XML for ``dom``; a value XML cannot carry is a ``PlanError``."""
    text = _render("domain.xml.j2", dom=dom, xen_host=xen_host, xen_config=xen_config)
    if bad := _NOT_XML.search(text):
        raise PlanError(
            dom.guest,
            "xml",
            f"a value holds {bad.group(0)!r}, which XML cannot carry (rename what holds it: "
            f"the guest, the dom0 or the Xen config's path {xen_config!r})",
        )
    return text


def target_fstab_entries(plan: GuestPlan, source: list[FstabEntry]) -> list[FstabEntry]:
    """The migrated guest's fstab entries: its own, renamed, plus the new /boot."""
    entries = rename_devices(source, plan.renames)
    # The planned volumes are authoritative for the filesystems that moved, except where
    # the guest names one by its UUID= or LABEL=: the new filesystem keeps both.
    by_mount = {volume.mountpoint: volume for volume in plan.volumes if volume.mountpoint}
    out: list[FstabEntry] = []
    for entry in entries:
        volume = by_mount.get(entry.mountpoint)
        kept = fstab_tag(entry.device) is not None
        if volume is not None and entry.device != volume.device and not kept:
            entry = FstabEntry(
                volume.device,
                entry.mountpoint,
                entry.fstype,
                entry.options,
                entry.dump,
                entry.passno,
            )
        out.append(entry)
        if entry.mountpoint == "/":
            out.append(FstabEntry(f"UUID={plan.boot_uuid}", "/boot", "ext4", "defaults", 0, 2))
    if not any(e.mountpoint == "/" for e in out):
        raise ValueError(f"{plan.guest}: its fstab has no / entry")
    return out


def fstab(plan: GuestPlan, source: list[FstabEntry]) -> str:
    """The migrated guest's ``/etc/fstab``."""
    return _render("fstab.j2", entries=target_fstab_entries(plan, source))


def grub_defaults(plan: GuestPlan) -> str:
    """``/etc/default/grub.d/xen2kvm.cfg``: serial console and stable interface names."""
    return _render("grub-serial.cfg.j2", dom=plan.domain)


def persistent_net_rules(plan: GuestPlan, interface_base: str = "eth") -> str:
    """``/etc/udev/rules.d/70-persistent-net.rules`` naming the planned MACs as before."""
    return _render("70-persistent-net.rules.j2", dom=plan.domain, interface_base=interface_base)


def root_device(plan: GuestPlan) -> str:
    """The guest's root filesystem as its kernel finds it under KVM (``root=``)."""
    return next(volume.device for volume in plan.volumes if volume.mountpoint == "/")


def kernel_cmdline(plan: GuestPlan) -> str:
    """The kernel options beside ``root=``: the Xen-era interface names and, when the plan
    has a serial console, the consoles (as ``grub-serial.cfg.j2`` sets them)."""
    return " ".join(["net.ifnames=0", plan.domain.kernel_console]).strip()


def grub_cfg(
    kernels: list[tuple[str, bool]],
    boot_uuid: str,
    root_device: str,
    cmdline: str = "",
    serial_console: bool = False,
) -> str:
    """``/boot/grub/grub.cfg``: one entry per (release, has an initrd), in the order given
    (``bootmenu.boot_kernels``: newest first), ``/boot`` found by its filesystem UUID.
    ValueError for a value that is not plain (``bootmenu.check_menu``)."""
    from .bootmenu import check_menu  # kept here: this module's imports are shared ground

    check_menu(kernels, boot_uuid, root_device, cmdline)
    return _render(
        "grub.cfg.j2",
        kernels=[{"release": release, "initrd": initrd} for release, initrd in kernels],
        boot_uuid=boot_uuid,
        root_device=root_device,
        cmdline=cmdline,
        serial_console=serial_console,
    )


def rsyncd_conf(module: str, root: str) -> str:
    """The rsync daemon's configuration a source serves the migration key with: one module,
    ``root`` read only, chrooted (``templates/rsyncd.conf.j2``). ``root`` must already be a
    plain absolute path (``sync.access`` refuses the others)."""
    return _render("rsyncd.conf.j2", module=module, root=root)
