"""The kinds of value a fleet file holds: each one's parser, its limits and its words.

Why a module of its own: the inventory schema (``inventory_schema``) is a table of fields,
and every field names one of these kinds. A kind's rule (what it accepts, what it turns
the value into, how it says no) is written here once and nowhere else; the reference
(``docs/inventory.md``) shows the same ``name``, ``unit`` and ``limits`` the parser checks.

A parser gets the YAML value and returns the parsed one or raises ``Bad`` with a message
that says what is wrong and what to write instead. Messages never quote a value whole:
``shown`` caps it, so a hostile file cannot blow a message up.
"""

from __future__ import annotations

import ipaddress
import re
import reprlib
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import SizeError
from .filesystems import FILESYSTEMS
from .units import GIB, MIB, TIB, parse_size

# ``\Z``, not ``$``: ``$`` also matches before a trailing newline ("web1\n").
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*\Z")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}\Z")
# What LVM accepts in VG/LV names, minus the leading hyphen.
LVM_NAME_RE = re.compile(r"^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*\Z")
# What the kernel accepts as a network interface name (dev_valid_name: fewer than
# IFNAMSIZ=16 bytes, no '/', ':' or whitespace), kept to the characters people use.
IFACE_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}\Z")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")

NAME_MAX = 253  # a DNS name; each dot-separated label at most 63
LVM_NAME_MAX = 127  # lvm2 NAME_LEN 128, with its NUL
DM_NAME_MAX = 127  # device-mapper DM_NAME_LEN 128, with its NUL: VG-LV, dashes doubled
TEXT_MAX = 4096  # PATH_MAX: the longest text any field takes
MEMORY_MIN_MIB = 16
MEMORY_MAX_MIB = 16 * 1024 * 1024  # 16 TiB
VCPUS_MAX = 4096  # libvirt's and KVM's (KVM_MAX_VCPUS) ceiling on x86
I440FX_VCPUS_MAX = 255  # QEMU's pc (i440fx) machine: max_cpus 255
LVM_RESERVED_LV = ("snapshot", "pvmove")
LVM_RESERVED_PARTS = (
    "_cdata",
    "_cmeta",
    "_corig",
    "_mlog",
    "_mimage",
    "_pmspare",
    "_rimage",
    "_rmeta",
    "_tdata",
    "_tmeta",
    "_vorigin",
    "_vdata",
)
MKFS_FSTYPES = FILESYSTEMS  # what disk.filesystem makes

_SHOW = reprlib.Repr()
_SHOW.maxstring = 60
_SHOW.maxother = 60
_SHOW.maxlevel = 2
_SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxdict = _SHOW.maxset = 4


class Bad(Exception):
    """A value a field does not take; ``sub`` names the part (``mkfs_options.btrfs``)."""

    def __init__(self, message: str, sub: str | None = None):
        super().__init__(message)
        self.message = message
        self.sub = sub


def shown(value: Any) -> str:
    """``repr`` for messages, capped: long strings, big numbers and deep nests are cut."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return "a number too large to be right"
    try:
        text = _SHOW.repr(value)
    except Exception:  # a hostile object's own __repr__: say what it is, not what it says
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def label(value: Any) -> str:
    """A key or host name as a message's host or field: itself if plain, else ``shown``."""
    if isinstance(value, str) and re.match(r"^[A-Za-z0-9_.+@:/-]{1,64}\Z", value):
        return value
    return shown(value)


def described(value: Any) -> str:
    """How YAML read a value, for messages: 'a list', 'a number (quote it)'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int | float):
        return f"{shown(value)} (YAML read a number: quote it)"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return shown(value)


@dataclass(frozen=True)
class Kind:
    """A kind of value: how the reference names it and how it is read."""

    name: str  # for the reference: "IP address", "size"
    parse: Callable[[Any], Any]
    unit: str = ""  # for the reference: "MiB (a bare number)"
    limits: str = ""  # for the reference: "16 MiB to 16 TiB"


# --- text and names ----------------------------------------------------------------


def text_value(value: Any, max_len: int = TEXT_MAX, what: str = "a string") -> str:
    if not isinstance(value, str):
        raise Bad(f"must be {what}, not {described(value)}")
    if not value:
        raise Bad(f"must be {what}, not empty")
    if _CONTROL_RE.search(value):
        raise Bad(f"{shown(value)} holds a control character (a newline, a tab...): remove it")
    if len(value) > max_len:
        raise Bad(f"is {len(value)} characters long: at most {max_len}")
    return value


def host_name(value: Any) -> str:
    text = text_value(value, NAME_MAX, "a name")
    if not NAME_RE.match(text):
        raise Bad(f"{shown(text)} must match ^[a-z0-9][a-z0-9.-]*$")
    label = max(text.split("."), key=len)
    if len(label) > 63:
        raise Bad(f"{shown(text)}: a dot-separated part is {len(label)} characters; at most 63")
    return text


def xen_domain(value: Any) -> str:
    """A Xen domain's name as ``xl list`` prints it: a column, so no space; never the dom0;
    no ``/``, not an option nor hidden."""
    text = text_value(value, NAME_MAX, "a Xen domain name")
    if (
        not text
        or text.startswith(("-", "."))
        or text == "Domain-0"
        or "/" in text
        or any(char.isspace() or not char.isprintable() for char in text)
    ):
        raise Bad(
            f"{shown(text)} is not a Xen domain name: no spaces, '/' nor control characters, "
            "not starting with '-' or '.', not Domain-0"
        )
    return text


def lvm_name(value: Any, lv: bool = False) -> str:
    text = text_value(value, TEXT_MAX, "an LVM name")
    if not LVM_NAME_RE.match(text) or text in (".", ".."):
        raise Bad(f"not a valid LVM name: {shown(text)} (letters, digits, + _ . -; no leading -)")
    if len(text) > LVM_NAME_MAX:
        raise Bad(f"an LVM name is at most {LVM_NAME_MAX} characters; this one has {len(text)}")
    if lv and (text in LVM_RESERVED_LV or any(part in text for part in LVM_RESERVED_PARTS)):
        raise Bad(f"{shown(text)} is a name LVM keeps for itself: choose another")
    return text


def dm_name(vg: str, lv: str) -> str:
    """The device-mapper name of ``/dev/VG/LV`` (``/dev/mapper/VG-LV``, dashes doubled)."""
    return f"{vg.replace('-', '--')}-{lv.replace('-', '--')}"


def iface_name(value: Any) -> str:
    text = text_value(value, TEXT_MAX, "an interface name")
    if not IFACE_RE.match(text) or text in (".", ".."):
        raise Bad(
            f"not an interface name: {shown(text)} (at most 15 of A-Z a-z 0-9 _ . -, as the "
            "kernel takes them: no /, : or whitespace)"
        )
    return text


def bridge_map(value: Any) -> dict[str, str]:
    """``{xenbr1: br1}``: the KVM bridge for each Xen bridge; both sides interface names."""
    if value is None:  # null: none, as an empty mapping
        return {}
    if not isinstance(value, dict):
        raise Bad(
            f"must map Xen bridges to KVM bridges, e.g. {{xenbr1: br1}}, not {described(value)}"
        )
    bridges = {}
    for xen, kvm in _bounded(list(value.items()), 64):
        sub = label(xen)
        try:
            xen_name = iface_name(xen)
        except Bad as exc:
            raise Bad(f"Xen bridge: {exc.message}", sub) from None
        try:
            bridges[xen_name] = iface_name(kvm)
        except Bad as exc:
            raise Bad(exc.message, sub) from None
    return bridges


def abs_path(value: Any) -> str:
    text = text_value(value, TEXT_MAX, "an absolute path")
    if not text.startswith("/"):
        raise Bad(f"must be an absolute path: {shown(text)}")
    return text


def libvirt_uri(value: Any) -> str:
    text = text_value(value, 1024, "a libvirt URI")
    if not re.match(r"^[a-z][a-z0-9+.-]*://\S*\Z", text):
        raise Bad(f"not a libvirt URI: {shown(text)} (e.g. qemu:///system)")
    return text


def token(value: Any) -> str:
    """A word used on a command line or as a unit name: no whitespace."""
    text = text_value(value, 255, "a name")
    if not re.match(r"^[A-Za-z0-9@._:+-]+\Z", text):
        raise Bad(f"{shown(text)} must be one word of A-Z a-z 0-9 @ . _ : + -")
    return text


def debian_package(value: Any) -> str:
    """A Debian binary package's name (Debian policy 5.6.1): ``linux-image-cloud-amd64``."""
    text = text_value(value, 255, "a package name")
    if not re.match(r"^[a-z0-9][a-z0-9+.-]+\Z", text):
        raise Bad(f"{shown(text)} is not a Debian package name (a-z 0-9 + - ., 2 or more)")
    return text


def token_list(value: Any) -> tuple[str, ...]:
    if value is None:  # null: none, as an empty list
        return ()
    if not isinstance(value, list):
        raise Bad(f"must be a list of names, not {described(value)}")
    return tuple(token(item) for item in _bounded(value))


def choice(*allowed: str) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise Bad(f"{described(value)} is not one of {', '.join(allowed)}")
        return value

    return parse


def _bounded(items: list, most: int = 256) -> list:
    if len(items) > most:
        raise Bad(f"has {len(items)} entries: at most {most}")
    return items


# --- numbers and sizes ----------------------------------------------------------------


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Bad(f"must be true or false, not {shown(value)}")
    return value


def whole(low: int, high: int, what: str = "a whole number") -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise Bad(f"must be {what} from {low} to {high}, not {described(value)}")
        if not low <= value <= high:
            raise Bad(f"must be {what} from {low} to {high}, not {shown(value)}")
        return value

    return parse


def tcp_port(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
        raise Bad(f"not a TCP port: {shown(value)} (a whole number from 1 to 65535)")
    return value


def size(value: Any, bare_unit: str, low: int, high: int) -> int:
    """Bytes from ``512M``, ``4G``, ``1.5G``; a bare number is in ``bare_unit``."""
    unit_name = {"M": "MiB", "": "bytes"}[bare_unit]
    hint = f"a bare number is {unit_name}; or give a unit K, M, G, T as in 512M, 4G, 1.5G"
    limits = f"from {_human(low)} to {_human(high)}"
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float | str)
        or (isinstance(value, str) and len(value) > 32)
    ):
        raise Bad(f"not a size: {described(value)} ({hint})")
    if isinstance(value, int | float) and not -(2**62) < value < 2**62:
        raise Bad(f"must be {limits}, not {shown(value)} ({hint})")
    try:
        number = parse_size(value if isinstance(value, str | int) else str(value), bare_unit)
    except SizeError as exc:
        raise Bad(f"{str(exc).split(' (')[0]} ({hint})") from None
    if not low <= number <= high:
        raise Bad(f"must be {limits}, not {_human(number)}")
    return number


def _human(number: int) -> str:
    for unit, factor in (("TiB", TIB), ("GiB", GIB), ("MiB", MIB)):
        if number >= factor and number % factor == 0:
            return f"{number // factor} {unit}"
    if number >= MIB:
        return f"{number / MIB:.1f} MiB"
    return f"{number} bytes"


def memory_mib(value: Any) -> int:
    low, high = MEMORY_MIN_MIB * MIB, MEMORY_MAX_MIB * MIB
    number = size(value, "M", low, high)
    if number % MIB:
        raise Bad(f"{shown(value)} is not a whole number of MiB (libvirt counts memory in MiB)")
    return number // MIB


def boot_size(value: Any) -> int:
    return size(value, "M", 64 * MIB, 64 * GIB)


def grow_map(value: Any) -> dict[str, int]:
    if value is None:  # null: none, as an empty mapping
        return {}
    if not isinstance(value, dict):
        raise Bad(
            f"must map mount points to extra sizes, e.g. {{/var: 2G}}, not {described(value)}"
        )
    grow: dict[str, int] = {}
    for mount, extra in _bounded(list(value.items()), 64):
        if not isinstance(mount, str) or not mount.startswith("/"):
            raise Bad(f"not a mount point: {shown(mount)}")
        text_value(mount)
        try:
            grow[mount] = size(extra, "", 1, 64 * TIB)
        except Bad as exc:
            raise Bad(exc.message, sub=label(mount)) from None
    return grow


# --- addresses ----------------------------------------------------------------------


def ip_address(value: Any) -> str:
    if not isinstance(value, str):
        raise Bad(f"not an IP address: {described(value)}")
    if "%" in value:
        raise Bad(
            f"{shown(value)} has a scope id (%...): a migrated guest's address never has one; "
            "write the address alone"
        )
    if len(value) > 64:
        raise Bad(f"not an IP address: {shown(value)}")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise Bad(f"not an IP address: {shown(value)}") from None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        raise Bad(f"{value} is an IPv4 address written as IPv6: write {address.ipv4_mapped}")
    if address.is_unspecified or address.is_multicast:
        raise Bad(f"{value} is not the address of one host")
    return str(address)


def ip_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise Bad(f"must be a non-empty list of IP addresses, not {described(value)}")
    ips = tuple(ip_address(item) for item in _bounded(value))
    twice = next((ip for n, ip in enumerate(ips) if ip in ips[:n]), None)
    if twice:
        raise Bad(f"{twice} is listed twice")
    return ips


def nameserver_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise Bad(f"must be a list of IP addresses, not {described(value)}")
    return tuple(ip_address(item) for item in _bounded(value, 16))


def mac_list(value: Any) -> tuple[str, ...]:
    if value is None:  # null: none, as an empty list
        return ()
    if not isinstance(value, list):
        raise Bad(f"must be a list of MAC addresses, not {described(value)}")
    macs = []
    for mac in _bounded(value, 64):
        if not isinstance(mac, str) or not MAC_RE.match(mac.lower()):
            raise Bad(f"not a MAC address: {described(mac)} (write 00:16:3e:12:34:56)")
        if int(mac[:2], 16) & 1:
            raise Bad(f"{mac} is a multicast MAC: a NIC's MAC has the low bit of its first byte 0")
        macs.append(mac.lower())
    return tuple(macs)


# --- mkfs options -------------------------------------------------------------------


def mkfs_options(value: Any) -> dict[str, str]:
    """``{ext4: "-O ^metadata_csum,^64bit"}``: extra options for mkfs, per filesystem type."""
    if value is None:  # null: none, as an empty mapping
        return {}
    if not isinstance(value, dict):
        example = '{ext4: "-O ^metadata_csum"}'
        raise Bad(f"must map types to options, e.g. {example}, not {described(value)}")
    options = {}
    for fstype, text in _bounded(list(value.items()), len(MKFS_FSTYPES)):
        sub = label(fstype)
        if fstype not in MKFS_FSTYPES:
            raise Bad(f"not one of {', '.join(MKFS_FSTYPES)}", sub)
        if not isinstance(text, str):
            raise Bad(f"must be a string of options, not {described(text)}", sub)
        try:
            text_value(text, 1024)
            words = shlex.split(text)
        except Bad as exc:
            raise Bad(exc.message, sub) from None
        except ValueError as exc:
            raise Bad(f"cannot be split like a shell would: {exc}: {shown(text)}", sub) from None
        fixed = [w for w in words if w[:2] in ("-U", "-L") or w.startswith("uuid=")]
        if fixed:
            raise Bad(f"{shown(fixed[0])}: xen2kvm sets the UUID and label itself", sub)
        options[fstype] = text
    return options
