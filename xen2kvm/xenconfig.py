"""Read Xen domain config files (``xm`` and ``xl`` syntax) without executing them.

xm configs are Python and xl configs are a Python-like subset; both are read here with a
small tokenizer and parser (no ``eval``). Anything that is not ``key = value`` with a
string, number or list value is reported as a ``XenConfigError`` naming file, line and key.

Disk specs follow xl-disk-configuration(5), including the deprecated xm grammar
(``phy:/dev/vg/x,xvda2,w``, ``tap:aio:/x.img,xvda,w``, ``,hdc:cdrom,r``), modelled on
libxl's own lexer (``libxlu_disk_l.l``). vif specs follow xl-network-configuration(5).

A config may come from a dom0 that is not trusted (a tenant's domU, a copied file), so
every size is bounded (see "limits" below) and ``parse_xen_config`` raises nothing but
``XenConfigError``, whatever the text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from .errors import XenConfigError
from .units import MAX_MEMORY_MIB, MAX_VCPUS, MIB

# --------------------------------------------------------------------------- limits
# Real configs are far inside these (xen-tools writes about 1 KiB); each bound keeps one
# hostile input from costing more than a moment and is reported with the line it is on.

MAX_FILE_BYTES = MIB
MAX_LINE_CHARS = 4096
MAX_STRING_CHARS = 4096  # the x86 Linux kernel command line holds at most 2048
MAX_NUMBER_CHARS = 20  # 2**64 has 20 digits
MAX_LIST_DEPTH = 4  # xl's vnuma nests lists two deep
MAX_LIST_ITEMS = 256
MAX_DEVICES = 64  # disks, and vifs: far above any real domU

# --------------------------------------------------------------------------- data model


@dataclass(frozen=True)
class XenDisk:
    """One ``disk = [...]`` entry, normalised (access rw/ro, format, backend, cdrom)."""

    target: str | None  # path/source; None for an empty cdrom
    vdev: str  # e.g. "xvda2", "hda", "sda1"
    access: str  # "rw" | "ro"
    format: str = "raw"
    backend: str | None = None  # "phy" | "file" | "tap" | "qdisk" | None
    cdrom: bool = False
    spec: str = ""  # the original spec string
    line: int | None = None
    # script, backend domain, discard, direct-io-safe, colo-*: as written
    options: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def partition_number(self) -> int | None:
        """``xvda2`` -> 2, ``d0p1`` -> 1, ``xvda``/``hdc``/``51712`` -> None."""
        return _split_vdev(self.vdev)[1]

    @property
    def disk_name(self) -> str:
        """``xvda2`` -> ``xvda``, ``hda1`` -> ``hda``, ``d0p1`` -> ``d0``."""
        return _split_vdev(self.vdev)[0]

    def to_json(self) -> dict:
        return {
            "target": self.target,
            "vdev": self.vdev,
            "access": self.access,
            "format": self.format,
            "backend": self.backend,
            "cdrom": self.cdrom,
        }


@dataclass(frozen=True)
class XenVif:
    """One ``vif = [...]`` entry; ``''`` gives a vif with every field at its default."""

    mac: str | None = None
    bridge: str | None = None
    ip: tuple[str, ...] = ()
    model: str | None = None
    vifname: str | None = None
    script: str | None = None
    rate: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict, hash=False)  # other keys
    spec: str = ""

    def to_json(self) -> dict:
        return {
            "mac": self.mac,
            "bridge": self.bridge,
            "ip": list(self.ip),
            "model": self.model,
            "vifname": self.vifname,
            "script": self.script,
            "rate": self.rate,
        }


@dataclass(frozen=True)
class XenDomain:
    """What xen2kvm reads from one domain config; ``raw`` keeps every key as written."""

    filename: str
    name: str | None
    type: str  # "pv" | "hvm" | "pvh"
    memory_mib: int | None
    maxmem_mib: int | None
    vcpus: int | None
    cpus: str | list | None = field(hash=False)
    disks: tuple[XenDisk, ...]
    vifs: tuple[XenVif, ...]
    kernel: str | None
    ramdisk: str | None
    bootloader: str | None
    root: str | None
    extra: str | None  # ``cmdline`` when given (xl prefers it), else ``extra``
    on_poweroff: str | None
    on_reboot: str | None
    on_crash: str | None
    raw: Mapping[str, object] = field(hash=False)  # every key as parsed, with its value
    lines: Mapping[str, int] = field(hash=False)  # key -> line where it was assigned

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "type": self.type,
            "memory_mib": self.memory_mib,
            "maxmem_mib": self.maxmem_mib,
            "vcpus": self.vcpus,
            "disks": [d.to_json() for d in self.disks],
            "vifs": [v.to_json() for v in self.vifs],
            "kernel": self.kernel,
            "ramdisk": self.ramdisk,
            "bootloader": self.bootloader,
            "root": self.root,
            "extra": self.extra,
            "on_poweroff": self.on_poweroff,
            "on_reboot": self.on_reboot,
            "on_crash": self.on_crash,
        }


# --------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class _Tok:
    kind: str  # IDENT NUMBER STRING OP NL EOF OTHER
    value: object
    line: int
    text: str


class _LexError(Exception):
    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_NUMBER_RE = re.compile(r"-?[0-9][0-9A-Za-z_.]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_ESCAPES.update({c: c for c in "\\'\""})


def _number(text: str) -> int | None:
    sign, digits = (-1, text[1:]) if text.startswith("-") else (1, text)
    if re.fullmatch(r"0[xX][0-9a-fA-F]+", digits):
        return sign * int(digits, 16)
    if re.fullmatch(r"0[0-7]+", digits):  # C strtol and Python 2 read these as octal
        return sign * int(digits, 8)
    if re.fullmatch(r"0|[1-9][0-9]*", digits):
        return sign * int(digits)
    return None


def _string(src: str, pos: int, line: int) -> tuple[str, int]:
    """Read a quoted string starting at ``src[pos]``; return (value, end position)."""
    quote, out, i, start = src[pos], [], pos + 1, line
    while i < len(src):
        ch = src[i]
        if len(out) > MAX_STRING_CHARS:
            raise _LexError(start, f"string longer than {MAX_STRING_CHARS} characters")
        if ch == quote:
            return _checked_string("".join(out), start), i + 1
        if ch == "\n":
            break
        if ch == "\\" and i + 1 < len(src):
            nxt = src[i + 1]
            octal = re.match(r"[0-7]{1,3}", src[i + 1 : i + 4])
            hexa = re.match(r"x([0-9a-fA-F]{2})", src[i + 1 : i + 4])
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
                i += 2
            elif octal:
                out.append(chr(int(octal.group(0), 8)))
                i += 1 + len(octal.group(0))
            elif hexa:
                out.append(chr(int(hexa.group(1), 16)))
                i += 4
            elif nxt == "\n":  # backslash-newline continues the string (Python)
                line += 1
                i += 2
            else:
                out.append(ch + nxt)
                i += 2
            continue
        out.append(ch)
        i += 1
    raise _LexError(line, f"unterminated string (no closing {quote})")


# C0 and C1 controls but tab, and lone surrogates: no Xen value holds them, and a name
# ending in a newline or holding a NUL would reach a shell, a path or the domain XML.
_CONTROL_RE = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\ud800-\udfff]")


def _checked_string(value: str, line: int) -> str:
    if m := _CONTROL_RE.search(value):
        raise _LexError(
            line,
            f"string holds the control character {m.group(0)!r} at position {m.start() + 1}"
            " (remove it: no Xen value needs one)",
        )
    return value


def _tokens(src: str) -> Iterator[_Tok]:
    i, line = 0, 1
    while i < len(src):
        ch = src[i]
        if ch == "\n":
            yield _Tok("NL", None, line, "newline")
            line += 1
            i += 1
        elif ch in " \t\r\f\v":
            i += 1
        elif ch == "#":
            while i < len(src) and src[i] != "\n":
                i += 1
        elif ch in "'\"":
            value, end = _string(src, i, line)
            yield _Tok("STRING", value, line, src[i:end])
            line += src.count("\n", i, end)
            i = end
        elif m := _NUMBER_RE.match(src, i):
            if len(m.group(0)) > MAX_NUMBER_CHARS:
                raise _LexError(line, f"number longer than {MAX_NUMBER_CHARS} characters")
            number = _number(m.group(0))
            if number is None:
                octal = (
                    " (a leading 0 means octal)" if re.fullmatch(r"-?0[0-9]+", m.group(0)) else ""
                )
                raise _LexError(line, f"{m.group(0)!r} is not a whole number{octal}")
            yield _Tok("NUMBER", number, line, m.group(0))
            i = m.end()
        elif m := _IDENT_RE.match(src, i):
            yield _Tok("IDENT", m.group(0), line, m.group(0))
            i = m.end()
        elif src.startswith("+=", i):
            yield _Tok("OP", "+=", line, "+=")
            i += 2
        elif ch in "=[],;":
            yield _Tok("OP", ch, line, ch)
            i += 1
        else:
            yield _Tok("OTHER", ch, line, ch)
            i += 1
    yield _Tok("EOF", None, line, "end of file")


# --------------------------------------------------------------------------- parser


@dataclass(frozen=True)
class _Item:
    """A parsed value with the line it started on (list items keep their own lines)."""

    value: object  # str | int | list[_Item]
    line: int


def _plain(item: _Item) -> object:
    if isinstance(item.value, list):
        return [_plain(i) for i in item.value]
    return item.value


class _Parser:
    def __init__(self, text: str, filename: str):
        self.filename = filename
        self._toks = _tokens(text)
        self.key: str | None = None
        self.depth = 0

    def error(self, line: int, message: str, key: str | None = None) -> XenConfigError:
        return XenConfigError(self.filename, line, key or self.key, message)

    def next(self) -> _Tok:
        try:
            return next(self._toks)
        except _LexError as exc:
            raise self.error(exc.line, exc.message) from None

    def parse(self) -> tuple[dict[str, _Item], dict[str, int]]:
        values: dict[str, _Item] = {}
        lines: dict[str, int] = {}
        while True:
            self.key = None
            tok = self.next()
            if tok.kind == "EOF":
                return values, lines
            if tok.kind == "NL" or tok.text == ";":
                continue
            if tok.kind != "IDENT":
                raise self.error(tok.line, f"expected 'key = value', found {tok.text!r}")
            op = self.next()
            if op.text not in ("=", "+="):
                raise self.error(
                    tok.line,
                    f"not an assignment: {tok.text!r} is followed by {op.text!r}, not '='"
                    " (xm configs that run Python code must be rewritten as plain"
                    " 'key = value' lines)",
                )
            self.key = tok.text
            item = self.value(self.next())
            end = self.next()
            if end.kind not in ("NL", "EOF") and end.text != ";":
                raise self.error(
                    end.line,
                    f"unexpected {end.text!r} after the value (only a string, a number or"
                    " a list is allowed; Python expressions are not evaluated)",
                )
            if op.text == "+=" and self.key in values:
                item = self.append(values[self.key], item, tok.line)
            elif self.key in values:
                raise self.error(
                    tok.line,
                    f"set twice, on line {lines[self.key]} and on line {tok.line}: xl would"
                    " silently take the last (keep one, or append with '+=')",
                )
            else:
                lines[self.key] = tok.line
            values[self.key] = item
            if end.kind == "EOF":
                return values, lines

    def value(self, tok: _Tok) -> _Item:
        if tok.kind in ("STRING", "NUMBER"):
            return _Item(tok.value, tok.line)
        if tok.text == "[":
            return self.list_value(tok.line)
        if tok.kind == "IDENT":
            raise self.error(tok.line, f"unquoted value {tok.text!r} (put strings in quotes)")
        raise self.error(tok.line, f"expected a value, found {tok.text!r}")

    def list_value(self, opened: int) -> _Item:
        self.depth += 1
        if self.depth > MAX_LIST_DEPTH:
            raise self.error(opened, f"lists nested more than {MAX_LIST_DEPTH} deep")
        item = self.list_items(opened)
        self.depth -= 1
        return item

    def list_items(self, opened: int) -> _Item:
        items: list[_Item] = []
        while True:
            tok = self.skip_newlines()
            if tok.text == "]":
                return _Item(items, opened)
            if tok.kind == "EOF":
                raise self.error(opened, "list opened here is never closed (missing ']')")
            if len(items) >= MAX_LIST_ITEMS:
                raise self.error(opened, f"list opened here has more than {MAX_LIST_ITEMS} items")
            items.append(self.value(tok))
            tok = self.skip_newlines()
            if tok.text == "]":
                return _Item(items, opened)
            if tok.text != ",":
                where = "end of file" if tok.kind == "EOF" else f"{tok.text!r} on line {tok.line}"
                raise self.error(
                    opened, f"list opened here is not closed: expected ',' or ']', found {where}"
                )

    def skip_newlines(self) -> _Tok:
        tok = self.next()
        while tok.kind == "NL":
            tok = self.next()
        return tok

    def append(self, old: _Item, new: _Item, line: int) -> _Item:
        if isinstance(old.value, list) and isinstance(new.value, list):
            if len(old.value) + len(new.value) > MAX_LIST_ITEMS:
                raise self.error(line, f"'+=' makes the list longer than {MAX_LIST_ITEMS} items")
            return _Item(old.value + new.value, old.line)
        if isinstance(old.value, str) and isinstance(new.value, str):
            if len(old.value) + len(new.value) > MAX_STRING_CHARS:
                raise self.error(
                    line, f"'+=' makes the string longer than {MAX_STRING_CHARS} characters"
                )
            return _Item(old.value + new.value, old.line)
        raise self.error(line, "'+=' needs a list added to a list or a string to a string")


# --------------------------------------------------------------------------- disk specs

_DEVTYPE_PREFIX = {"phy": "phy", "file": "file", "tap": "tap", "tap2": "tap", "tapdisk": "tap"}
_IGNORED_PREFIX = {"aio", "ioemu"}
_FORMAT_PREFIX = {"raw", "qcow", "qcow2", "vhd"}
_SCRIPT_PREFIX = {"iscsi", "nbd", "enbd", "drbd"}
_FORMATS = {"raw", "qcow", "qcow2", "vhd", "qed", "empty"}
_BACKENDTYPES = {"phy", "tap", "qdisk"}
_DISK_KEYS = {"format", "devtype", "access", "backend", "backendtype", "vdev", "script"} | {
    "colo-host",
    "colo-port",
    "colo-export",
    "active-disk",
    "hidden-disk",
}
_DISK_FLAGS = {"direct-io-safe", "discard", "no-discard", "colo", "no-colo"}
_ACCESS = {"r": "ro", "ro": "ro", "w": "rw", "rw": "rw", "w!": "rw"}
_VDEV_OK = re.compile(r"(?:xvd[a-z]+|hd[a-z]|sd[a-z]+)(?:[1-9][0-9]*)?|d[0-9]+(?:p[0-9]+)?|[0-9]+")


def _split_vdev(vdev: str) -> tuple[str, int | None]:
    if m := re.fullmatch(r"(d[0-9]+)(?:p([0-9]+))?", vdev):
        return m.group(1), int(m.group(2)) if m.group(2) else None
    if m := re.fullmatch(r"((?:xvd|hd|sd)[a-z]+)([0-9]+)?", vdev):
        return m.group(1), int(m.group(2)) if m.group(2) else None
    return vdev, None


class _DiskSpec:
    """State while reading one disk spec, mirroring libxl's disk lexer."""

    def __init__(self, spec: str, filename: str, line: int | None):
        self.spec, self.filename, self.line = spec, filename, line
        self.target: str | None = None
        self.format: str | None = None
        self.vdev: str | None = None
        self.access: str | None = None
        self.cdrom = False
        self.prefix_backend: str | None = None
        self.backendtype: str | None = None
        self.had_prefix = False
        self.options: dict[str, str] = {}

    def error(self, message: str) -> XenConfigError:
        return XenConfigError(self.filename, self.line, "disk", f"{message} in {self.spec!r}")

    def set_format(self, value: str) -> None:
        value = value or "raw"
        if value not in _FORMATS:
            hint = ""
            if self.vdev is None and _VDEV_OK.fullmatch(value):
                hint = " (an old-style spec needs a prefix: phy:, file: or tap:aio:)"
            raise self.error(f"unknown format {value!r}{hint}")
        if self.format not in (None, value):
            raise self.error(f"format given twice ({self.format!r} and {value!r})")
        self.format = value

    def set_access(self, value: str) -> None:
        if value and value not in _ACCESS:
            raise self.error(f"unknown access {value!r} (use r, ro, w or rw)")
        self.access = _ACCESS.get(value)

    def set_vdev(self, value: str, allow_devtype: bool = True) -> bool:
        if allow_devtype and ":" in value:
            value, devtype = value.rsplit(":", 1)
            if devtype not in ("cdrom", "disk"):
                raise self.error(f"unknown device type {devtype!r} (use cdrom or disk)")
            self.cdrom = devtype == "cdrom"
        elif allow_devtype:
            return False
        if self.vdev:
            raise self.error("vdev given twice")
        self.vdev = value
        return True

    def keyword(self, key: str, value: str) -> None:
        if key == "format":
            self.set_format(value)
        elif key == "access":
            self.set_access(value)
        elif key == "devtype":
            if value not in ("cdrom", "disk"):
                raise self.error(f"unknown devtype {value!r} (use cdrom or disk)")
            self.cdrom = value == "cdrom"
        elif key == "backendtype":
            if value not in _BACKENDTYPES:
                raise self.error(f"unknown backendtype {value!r} (use phy, tap or qdisk)")
            self.backendtype = value
        elif key == "vdev":
            self.set_vdev(value, allow_devtype=False)
        else:  # backend (a domain name), script, colo-*
            self.options[key] = value

    def prefix(self, name: str) -> None:
        self.had_prefix = True
        if name in _FORMAT_PREFIX:
            self.set_format(name)
        elif name in _SCRIPT_PREFIX:
            self.options["script"] = f"block-{name}"
        elif name in _DEVTYPE_PREFIX:
            self.prefix_backend = self.prefix_backend or _DEVTYPE_PREFIX[name]

    def positional(self, value: str) -> None:
        if self.target is None:
            self.target = value
        elif not self.had_prefix and self.format is None:
            if self.target == "" and self.set_vdev(value):
                self.format = "empty"  # ``,hdc:cdrom,r``: xend's empty cdrom
            else:
                self.set_format(value)
        elif self.vdev is None:
            if not self.set_vdev(value):
                self.vdev = value
        elif self.access is None:
            self.set_access(value)
            self.access = self.access or ""  # an empty access still fills its place
        else:
            raise self.error(f"too many positional parameters at {value!r}")

    def read(self) -> None:
        rest = self.spec
        while rest:
            rest = rest.lstrip(" \t\n")
            if not rest:
                break
            if rest.startswith("target="):
                if self.target:
                    raise self.error("target given twice")
                value = rest[len("target=") :]
                self.target = value[:-1] if value.endswith(",") else value
                break
            m = re.match(r"([a-z][a-z0-9]*):", rest)
            name = m.group(1) if m else ""
            if name in _DEVTYPE_PREFIX or name in _FORMAT_PREFIX or name in _SCRIPT_PREFIX:
                self.prefix(name)
                rest = rest[len(name) + 1 :]
                continue
            if name in _IGNORED_PREFIX:
                self.had_prefix = True
                rest = rest[len(name) + 1 :]
                continue
            if m and not re.match(r"[a-z0-9]", rest[m.end() :]):
                raise self.error(f"unknown prefix {name + ':'!r}")
            element, _, rest = rest.partition(",")
            element = element.rstrip()
            if kv := re.fullmatch(r"([a-z][-a-z0-9]*)=(.*)", element):
                if kv.group(1) not in _DISK_KEYS:
                    raise self.error(f"unknown disk spec element {element!r}")
                self.keyword(kv.group(1), kv.group(2))
            elif element == "cdrom":
                self.cdrom = True
            elif element in _DISK_FLAGS:
                self.options[element] = "1"
            elif "=" in element:
                raise self.error(f"unknown disk spec element {element!r}")
            else:
                self.positional(element)

    def build(self) -> XenDisk:
        if self.vdev and self.vdev.startswith("/dev/"):
            self.vdev = self.vdev[len("/dev/") :]
        if not self.vdev:
            raise self.error("no vdev (the device name the guest sees, e.g. xvda)")
        if not _VDEV_OK.fullmatch(self.vdev):
            raise self.error(
                f"{self.vdev!r} is not a Xen/Linux virtual device name (xvda, hda, sdb1)"
            )
        target = self.target or None
        if target is None and not self.cdrom:
            raise self.error("no target (the disk's path on the host)")
        backend = self.backendtype or self.prefix_backend
        if target and backend == "phy" and "script" not in self.options:
            target = target if target.startswith("/") else f"/dev/{target}"  # as xend/libxl do
        fmt = self.format if self.format not in (None, "empty") else "raw"
        access = self.access or ("ro" if self.cdrom else "rw")
        return XenDisk(
            target=target,
            vdev=self.vdev,
            access=access,
            format=fmt,
            backend=backend,
            cdrom=self.cdrom,
            spec=self.spec,
            line=self.line,
            options=dict(self.options),
        )


def parse_disk_spec(spec: str, filename: str = "<string>", line: int | None = None) -> XenDisk:
    """Read one ``disk = [...]`` entry, in xl or legacy xm form."""
    state = _DiskSpec(spec, filename, line)
    state.read()
    return state.build()


# --------------------------------------------------------------------------- vif specs

_MAC_RE = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}")
_VIF_FIELDS = ("mac", "bridge", "model", "vifname", "script", "rate")


def parse_vif_spec(spec: str, filename: str = "<string>", line: int | None = None) -> XenVif:
    """Read one ``vif = [...]`` entry: comma-separated ``key=value``; ``''`` is a default vif."""
    values: dict[str, str] = {}
    for element in spec.split(","):
        element = element.strip()
        if not element:
            continue
        key, eq, value = element.partition("=")
        if not eq or not key.strip():
            raise XenConfigError(
                filename, line, "vif", f"{element!r} is not key=value in vif spec {spec!r}"
            )
        if key.strip() in values:
            raise XenConfigError(
                filename, line, "vif", f"{key.strip()!r} given twice in vif spec {spec!r}"
            )
        values[key.strip()] = value.strip()
    mac = values.get("mac")
    if mac is not None:
        _check_mac(mac, filename, line)
    known = {k: values.get(k) or None for k in _VIF_FIELDS}
    other = {k: v for k, v in values.items() if k not in _VIF_FIELDS and k != "ip"}
    return XenVif(
        **known,
        ip=tuple(values.get("ip", "").split()),
        extra=other,
        spec=spec,
    )


def _check_mac(mac: str, filename: str, line: int | None) -> None:
    if not _MAC_RE.fullmatch(mac):
        raise XenConfigError(
            filename, line, "vif", f"mac {mac!r} is not of the form xx:xx:xx:xx:xx:xx (hex)"
        )
    if int(mac[:2], 16) & 1:
        raise XenConfigError(
            filename,
            line,
            "vif",
            f"mac {mac!r} is a multicast address (the first octet is odd): a NIC needs a"
            " unicast one, e.g. 00:16:3e:xx:xx:xx (Xen's range), or leave mac= out",
        )
    if mac.replace(":", "").strip("0") == "":
        raise XenConfigError(
            filename, line, "vif", f"mac {mac!r} is all zeros (give a real one or leave it out)"
        )


# --------------------------------------------------------------------------- domain

_INT_KEYS = {"memory", "maxmem", "vcpus", "maxvcpus", "vnc"}
_STR_KEYS = {"name", "uuid", "kernel", "ramdisk", "root", "extra", "cmdline", "bootloader"} | {
    "builder",
    "type",
    "on_poweroff",
    "on_reboot",
    "on_crash",
}
_STR_OR_LIST_KEYS = {"cpus", "bootloader_args", "serial"}
_LIST_KEYS = {"disk", "vif", "vfb"}
_TYPES = {"pv", "hvm", "pvh"}
_BUILDERS = {"linux": "pv", "hvm": "hvm", "generic": "pv"}
_UUID_RE = re.compile(r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}", re.IGNORECASE)
# The largest value each number may take: Xen's x86 hosts address at most 16 TiB and
# KVM runs at most 4096 vCPUs; past that a config is wrong or hostile.
_INT_MAX = {"memory": MAX_MEMORY_MIB, "maxmem": MAX_MEMORY_MIB} | {
    "vcpus": MAX_VCPUS,
    "maxvcpus": MAX_VCPUS,
}
_INT_UNIT = {"memory": " MiB", "maxmem": " MiB"}


class _Domain:
    def __init__(self, values: dict[str, _Item], lines: dict[str, int], filename: str):
        self.values, self.lines, self.filename = values, lines, filename

    def error(self, key: str, message: str, line: int | None = None) -> XenConfigError:
        return XenConfigError(self.filename, line or self.lines.get(key), key, message)

    def get_int(self, key: str) -> int | None:
        item = self.values.get(key)
        if item is None:
            return None
        value = item.value
        if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
            if len(value.strip()) > MAX_NUMBER_CHARS:
                raise self.error(key, f"number longer than {MAX_NUMBER_CHARS} digits")
            value = int(value)  # xen-tools writes memory = '256'
        if not isinstance(value, int):
            raise self.error(key, f"expected a whole number, got {_plain(item)!r}")
        return value

    def get_str(self, key: str) -> str | None:
        item = self.values.get(key)
        if item is None:
            return None
        if isinstance(item.value, list):
            raise self.error(key, f"expected a string, got a list {_plain(item)!r}")
        return str(item.value)

    def check_kinds(self) -> None:
        for key, item in self.values.items():
            if key in _INT_KEYS:
                self.get_int(key)
            elif key in _STR_KEYS:
                self.get_str(key)
            elif key in _LIST_KEYS and not isinstance(item.value, list):
                raise self.error(key, f"expected a list, e.g. {key} = [ '...' ]")

    def strings(self, key: str) -> list[_Item]:
        item = self.values.get(key)
        if item is None:
            return []
        entries = item.value if isinstance(item.value, list) else []  # check_kinds ran
        for entry in entries:
            if not isinstance(entry.value, str):
                raise self.error(key, f"expected strings in the list, got {_plain(entry)!r}")
        return entries

    def positive(self, key: str) -> int | None:
        value = self.get_int(key)
        if value is not None and value <= 0:
            raise self.error(key, f"must be a positive number, got {value}")
        top = _INT_MAX.get(key)
        if value is not None and top is not None and value > top:
            unit = _INT_UNIT.get(key, "")
            raise self.error(key, f"{value}{unit} is more than the {top}{unit} a domain can have")
        return value

    def name(self) -> str | None:
        name = self.get_str("name")
        if name is not None and not name.strip():
            raise self.error("name", "is empty (give the domain's name, e.g. name = 'web01')")
        return name

    def uuid(self) -> None:
        value = self.get_str("uuid")
        if value is not None and not _UUID_RE.fullmatch(value):
            raise self.error(
                "uuid",
                f"{value!r} is not a UUID: write it as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx"
                " (hex), or remove the line and the domain's UUID is derived from its name",
            )

    def devices(self, key: str) -> list[_Item]:
        entries = self.strings(key)
        if len(entries) > MAX_DEVICES:
            raise self.error(key, f"{len(entries)} entries: at most {MAX_DEVICES} are read")
        return entries

    def vifs(self) -> tuple[XenVif, ...]:
        vifs: list[XenVif] = []
        seen: dict[str, int | None] = {}
        for entry in self.devices("vif"):
            vif = parse_vif_spec(str(entry.value), self.filename, entry.line)
            mac = (vif.mac or "").lower()
            if mac and mac in seen:
                raise self.error(
                    "vif", f"mac {vif.mac} is used twice (first on line {seen[mac]})", entry.line
                )
            seen[mac] = entry.line
            vifs.append(vif)
        return tuple(vifs)

    def dom_type(self) -> str:
        if (kind := self.get_str("type")) is not None:
            if kind not in _TYPES:
                raise self.error("type", f"unknown type {kind!r} (use pv, hvm or pvh)")
            return kind
        builder = self.get_str("builder")
        if builder is not None and builder not in _BUILDERS:
            raise self.error("builder", f"unknown builder {builder!r} (use linux or hvm)")
        return _BUILDERS.get(builder or "linux", "pv")

    def disks(self) -> tuple[XenDisk, ...]:
        disks: list[XenDisk] = []
        seen: dict[str, int | None] = {}
        for entry in self.devices("disk"):
            disk = parse_disk_spec(str(entry.value), self.filename, entry.line)
            if disk.vdev in seen:
                raise self.error(
                    "disk",
                    f"vdev {disk.vdev!r} is used twice (first on line {seen[disk.vdev]})",
                    entry.line,
                )
            seen[disk.vdev] = entry.line
            disks.append(disk)
        return tuple(disks)

    def cpus(self) -> str | list | None:
        item = self.values.get("cpus")
        if item is None:
            return None
        value = _plain(item)
        return value if isinstance(value, list) else str(value)

    def build(self) -> XenDomain:
        self.check_kinds()
        memory = self.positive("memory")
        maxmem = self.positive("maxmem")
        self.positive("maxvcpus")
        self.uuid()
        vifs = self.vifs()
        cmdline = self.get_str("cmdline")
        return XenDomain(
            filename=self.filename,
            name=self.name(),
            type=self.dom_type(),
            memory_mib=memory,
            maxmem_mib=maxmem,
            vcpus=self.positive("vcpus"),
            cpus=self.cpus(),
            disks=self.disks(),
            vifs=vifs,
            kernel=self.get_str("kernel"),
            ramdisk=self.get_str("ramdisk"),
            bootloader=self.get_str("bootloader"),
            root=self.get_str("root"),
            extra=cmdline if cmdline is not None else self.get_str("extra"),
            on_poweroff=self.get_str("on_poweroff"),
            on_reboot=self.get_str("on_reboot"),
            on_crash=self.get_str("on_crash"),
            raw={key: _plain(item) for key, item in self.values.items()},
            lines=dict(self.lines),
        )


def parse_xen_config(text: str, filename: str = "<string>") -> XenDomain:
    """Parse the text of an xm or xl domain config. Raises ``XenConfigError`` only."""
    _check_size(text, filename)
    values, lines = _Parser(text, filename).parse()
    if not values:
        raise XenConfigError(
            filename,
            None,
            None,
            "holds no 'key = value' line: it is empty or not a Xen domain config (a domain"
            " needs at least name = '...' and disk = [ '...' ])",
        )
    return _Domain(values, lines, filename).build()


def _check_size(text: str, filename: str) -> None:
    if len(text) > MAX_FILE_BYTES:
        raise XenConfigError(
            filename, None, None, f"larger than {MAX_FILE_BYTES // MIB} MiB: not a domain config"
        )
    for number, line in enumerate(text.split("\n"), 1):
        if len(line) > MAX_LINE_CHARS:
            raise XenConfigError(
                filename,
                number,
                None,
                f"line longer than {MAX_LINE_CHARS} characters (split a long list over lines)",
            )


def load_xen_config(path: str | os.PathLike) -> XenDomain:
    """Read and parse the config file at ``path``; errors name the path."""
    filename = os.fspath(path)
    try:
        with open(filename, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise XenConfigError(filename, None, None, f"cannot read: {exc.strerror}") from exc
    except ValueError as exc:  # a NUL in the path, which no command line can hold
        raise XenConfigError(repr(filename), None, None, f"cannot read: {exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise XenConfigError(
            filename, None, None, f"larger than {MAX_FILE_BYTES // MIB} MiB: not a domain config"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise XenConfigError(
            filename,
            line,
            None,
            f"byte 0x{data[exc.start]:02x} is not UTF-8 (convert the file, e.g."
            " iconv -f latin1 -t utf-8)",
        ) from None
    return parse_xen_config(text.removeprefix("\ufeff"), filename)
