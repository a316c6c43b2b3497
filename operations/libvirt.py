"""
Manage the libvirt domains of a KVM host: the KVM side of the migrated guests.
"""

from __future__ import annotations

import posixpath
import re
import xml.etree.ElementTree as ET
from io import StringIO

from pyinfra import host
from pyinfra.api import (
    FileUploadCommand,
    OperationError,
    OperationValueError,
    QuoteString,
    StringCommand,
    operation,
)

from facts.libvirt import LibvirtDomain, uri_problem, virsh
from operations.util.checks import check_bool, check_domain, check_timeout
from operations.util.facts import fact

# Where the XML of each domain is uploaded before ``virsh define``: it stays as the record
# of what was last defined.
XML_DIR = "/var/lib/xen2kvm/domains"
X2K_NS = "urn:xen2kvm:migration:1"
_ACTIVE = ("running", "idle", "blocked")  # what virsh domstate says of a running domain
# libvirt's memory units (formatdomain.html, "Memory Allocation"), in bytes.
_UNITS = {
    "b": 1, "bytes": 1, "kb": 10**3, "k": 2**10, "kib": 2**10, "mb": 10**6, "m": 2**20,
    "mib": 2**20, "gb": 10**9, "g": 2**30, "gib": 2**30, "tb": 10**12, "t": 2**40,
    "tib": 2**40,
}  # fmt: skip
_MACHINE_FAMILY = re.compile(r"pc-(?P<family>i440fx|q35)-[\d.]+")


def _bytes(element: ET.Element | None) -> int | None:
    if element is None or element.text is None:
        return None
    unit = (element.get("unit") or "KiB").lower()
    if unit not in _UNITS:
        raise ValueError(f"unknown memory unit {unit!r}")
    return int(element.text.strip()) * _UNITS[unit]


def _machine(value: str | None) -> str | None:
    """QEMU expands the machine alias it is given: ``pc`` becomes ``pc-i440fx-7.2``."""
    match = _MACHINE_FAMILY.fullmatch(value or "")
    if match is None:
        return value
    return "pc" if match["family"] == "i440fx" else "q35"


def managed_view(xml_text: str) -> dict:
    """
    What ``templates/domain.xml.j2`` decides in a domain XML, in a form libvirt's own
    rewriting does not change: memory in bytes, the machine as its alias, and nothing of
    what libvirt adds (ids, aliases, PCI addresses, controllers, emulator, seclabels, tap
    names). Two XMLs with the same view need no redefinition.

    Raises ``ValueError`` for text that is not a domain XML.
    """
    try:
        root = ET.fromstring(xml_text)  # noqa: S314 (our template, or virsh on our host)
    except ET.ParseError as error:
        raise ValueError(f"not XML: {error}") from None
    if root.tag != "domain":
        raise ValueError(f"not a domain XML: its root is <{root.tag}>")
    os_type = root.find("os/type")
    migration = root.find(f"metadata/{{{X2K_NS}}}migration")
    return {
        "type": root.get("type"),
        "name": (root.findtext("name") or "").strip(),
        "uuid": (root.findtext("uuid") or "").strip().lower() or None,
        "memory": _bytes(root.find("memory")),
        "current_memory": _bytes(root.find("currentMemory")),
        "vcpu": int(root.findtext("vcpu") or 1),
        "os": None
        if os_type is None
        else {
            "type": (os_type.text or "").strip(),
            "arch": os_type.get("arch"),
            "machine": _machine(os_type.get("machine")),
        },
        "lifecycle": {
            event: (root.findtext(event) or "").strip() or None
            for event in ("on_poweroff", "on_reboot", "on_crash")
        },
        "disks": [
            {
                "device": disk.get("device", "disk"),
                "source": _attrs(disk.find("source"), ("dev", "file")),
                "target": _attrs(disk.find("target"), ("dev", "bus")),
            }
            for disk in root.findall("devices/disk")
        ],
        "interfaces": [
            {
                "type": nic.get("type"),
                "mac": _attr(nic.find("mac"), "address", lower=True),
                "bridge": _attr(nic.find("source"), "bridge"),
                "model": _attr(nic.find("model"), "type"),
            }
            for nic in root.findall("devices/interface")
        ],
        "xen2kvm": None
        if migration is None
        else {child.tag.rpartition("}")[2]: (child.text or "").strip() for child in migration},
    }


def _attr(element: ET.Element | None, key: str, lower: bool = False) -> str | None:
    value = None if element is None else element.get(key)
    return value.lower() if lower and value else value


def _attrs(element: ET.Element | None, keys: tuple[str, ...]) -> dict:
    return {} if element is None else {k: element.get(k) for k in keys if element.get(k)}


def _check_flag(label: str, value: object) -> None:
    if value is not None:
        check_bool(label, value)


def _shutdown_command(domain: str, timeout: int, uri: str | None) -> StringCommand:
    quoted, v = QuoteString(domain), virsh(uri)
    return StringCommand(
        v,
        "shutdown --domain",
        quoted,
        '&& n=0 && while test "$(LC_ALL=C',
        v,
        "domstate --domain",
        quoted,
        f')" != \'shut off\'; do if test "$n" -ge {timeout}; then echo',
        QuoteString(f"{domain} still runs {timeout}s after its shutdown: destroying it"),
        ">&2;",
        v,
        "destroy --domain",
        quoted,
        "; exit $?; fi; sleep 1; n=$((n + 1)); done",
    )


@operation()
def domain(
    domain: str,
    xml: str | None = None,
    defined: bool = True,
    running: bool | None = None,
    autostart: bool | None = None,
    shutdown_timeout: int = 300,
    uri: str | None = None,
):
    """
    Define, redefine, start, stop or undefine a libvirt domain, and set its autostart.

    + domain: the domain's name (not ``name``: pyinfra takes that for the operation's)
    + xml: the domain XML it should have (``xen2kvm.render.domain_xml``): needed to define
    + defined: whether the domain should exist
    + running: start it (``True``), shut it down (``False``) or leave it (``None``)
    + autostart: whether libvirt starts it at boot (``None``: leave as it is)
    + shutdown_timeout: seconds a shutdown may take before the domain is destroyed
    + uri: the libvirt to manage (``virsh -c URI``, the KVM host's ``libvirt_uri``);
      ``None``: virsh's default

    The XML is uploaded to ``/var/lib/xen2kvm/domains/<domain>.xml`` and defined from
    there. An existing domain is redefined only when what xen2kvm's template sets differs
    (see ``managed_view``): what libvirt adds is ignored. A redefinition of a running
    domain takes effect at its next cold start. The UUID of a domain cannot change: undefine
    it first.

    ``running=False`` asks the guest to shut down (ACPI), polls ``virsh domstate`` once a
    second and, if the domain still runs after ``shutdown_timeout`` seconds, **destroys
    it** (pulls the plug). ``defined=False`` destroys a running domain at once, then
    undefines it; its storage is kept.

    **Example:**

    .. code:: python

        libvirt.domain(
            name="Define and start web1 on KVM",
            domain="web1",
            xml=render.domain_xml(plan.domain, "xen1", "/etc/xen/web1.cfg"),
            running=True,
            autostart=True,
        )
    """
    check_domain(domain, "libvirt")
    for label, value in (("running", running), ("autostart", autostart)):
        _check_flag(label, value)
    check_bool("defined", defined)
    check_timeout("shutdown_timeout", shutdown_timeout)
    if uri_problem(uri):
        raise OperationValueError(str(uri_problem(uri)))
    at = {} if uri is None else {"uri": uri}  # the fact's arguments, as before without one
    if not defined:
        if xml is not None or running or autostart:
            raise OperationValueError(
                f"domain {domain}: defined=False takes no xml, running=True nor autostart=True"
            )
    else:
        if not isinstance(xml, str):
            raise OperationValueError(f"domain {domain}: give its xml to define it")
        try:
            wanted = managed_view(xml)
        except ValueError as error:
            raise OperationValueError(f"domain {domain}: its xml is unusable: {error}") from None
        if wanted["name"] != domain:
            raise OperationValueError(
                f"domain {domain}: its xml names the domain {wanted['name']!r}"
            )

    # One virsh process (this runs inside a guest's downtime): its XML and info, or None.
    current = fact(host, LibvirtDomain, domain=domain, **at)

    if not defined:
        if current is None:
            host.noop(f"domain {domain} is already undefined")
            yield from ()
            return
        if current["state"] != "shut off":
            yield StringCommand(virsh(uri), "destroy --domain", QuoteString(domain))
        yield StringCommand(virsh(uri), "undefine --domain", QuoteString(domain))
        return

    commands, done = _converge(
        domain, xml, wanted, current, running, autostart, shutdown_timeout, uri
    )
    if not commands:
        host.noop(f"domain {domain} is already {', '.join(done)}")
        yield from ()
        return
    yield from commands


def _converge(domain, xml, wanted, current, running, autostart, shutdown_timeout, uri):
    """The commands that bring an existing (``current``: the ``LibvirtDomain`` fact) or
    missing (``None``) domain to what is wanted."""
    commands: list = []
    done = ["defined as wanted"]
    if current is not None:
        view = managed_view(current["xml"])
        if wanted["uuid"] and view["uuid"] != wanted["uuid"]:
            raise OperationValueError(
                f"domain {domain} on {host.name} has the UUID {view['uuid']}, its xml "
                f"{wanted['uuid']}: libvirt cannot change it; undefine the domain first"
            )
    if current is None or view != wanted:
        path = posixpath.join(XML_DIR, f"{domain}.xml")
        commands += [
            StringCommand("mkdir -p", QuoteString(XML_DIR)),
            FileUploadCommand(StringIO(xml), path),
            StringCommand(virsh(uri), "define --validate --file", QuoteString(path)),
        ]
    state = "shut off" if current is None else current["state"]
    quoted = QuoteString(domain)
    if running is True:
        done.append("running")
        if state == "shut off":
            commands.append(StringCommand(virsh(uri), "start --domain", quoted))
        elif state == "paused":
            commands.append(StringCommand(virsh(uri), "resume --domain", quoted))
        elif state not in _ACTIVE:
            raise OperationError(f"domain {domain} on {host.name} is {state}: cannot start it")
    elif running is False:
        done.append("shut off")
        if state != "shut off":
            commands.append(_shutdown_command(domain, shutdown_timeout, uri))
    if autostart is not None:
        done.append("started at boot" if autostart else "not started at boot")
        if autostart != (current is not None and current["autostart"]):
            flag = "autostart --domain" if autostart else "autostart --disable --domain"
            commands.append(StringCommand(virsh(uri), flag, quoted))
    return commands, done
