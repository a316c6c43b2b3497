"""Property-based fuzzing of the Xen parser and of the plan/render path behind it.

Whatever the text, ``parse_xen_config`` returns a domain or raises ``XenConfigError``;
whatever parses, planning and rendering give well-formed XML or a ``Xen2KvmError``.
Runs are derandomized (the same examples on every run, so CI is reproducible), keep no
example database, and are bounded to a few seconds.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
import xml.etree.ElementTree as ET

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xen2kvm.errors import Xen2KvmError, XenConfigError
from xen2kvm.planner import plan_domain
from xen2kvm.render import domain_xml
from xen2kvm.units import MAX_MEMORY_MIB, MAX_VCPUS, MIN_MEMORY_MIB
from xen2kvm.xenconfig import XenDomain, load_xen_config, parse_xen_config

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,  # a shared 2-core CI box: time is bounded by max_examples instead
    max_examples=150,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def parse_or_error(text: str) -> XenDomain | None:
    """The contract: a domain, or one ``XenConfigError`` naming the file."""
    try:
        return parse_xen_config(text, "fuzz.cfg")
    except XenConfigError as exc:
        assert exc.filename == "fuzz.cfg"
        assert exc.line is None or exc.line >= 1
        assert "\n" not in exc.message
        return None


# --------------------------------------------------------------------------- raw input


@FUZZ
@given(st.text(max_size=1500))
def test_random_text_parses_or_is_one_config_error(text):
    parse_or_error(text)


@FUZZ
@given(st.text(alphabet="[]'\",=+;#\\\n 0x1aZ_-", max_size=400))
def test_random_punctuation_parses_or_is_one_config_error(text):
    parse_or_error(text)


@settings(FUZZ, max_examples=100)
@given(st.binary(max_size=2000))
def test_random_bytes_from_a_file_parse_or_are_one_config_error(data):
    with tempfile.NamedTemporaryFile(suffix=".cfg") as handle:
        handle.write(data)
        handle.flush()
        try:
            load_xen_config(handle.name)
        except XenConfigError as exc:
            assert exc.filename == handle.name


# --------------------------------------------------------------------------- structure

IDENT = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,12}", fullmatch=True)
KEYS = st.sampled_from(
    [
        "name",
        "memory",
        "maxmem",
        "vcpus",
        "maxvcpus",
        "uuid",
        "kernel",
        "ramdisk",
        "root",
        "extra",
        "cmdline",
        "bootloader",
        "builder",
        "type",
        "on_poweroff",
        "on_reboot",
        "on_crash",
        "cpus",
        "disk",
        "vif",
        "vfb",
        "vnc",
        "serial",
        "pci",
    ]
)
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70).map(str),
    st.integers(0, 2**40).map(hex),
    st.integers(0, 4096).map(lambda n: "0" + oct(n)[2:]),
    st.from_regex(r"-?[0-9][0-9a-zA-Z_.]{0,30}", fullmatch=True),
)
ESCAPES = st.sampled_from(["\\n", "\\t", "\\'", '\\"', "\\\\", "\\x41", "\\101", "\\0", "\\q"])
STRING_BODY = st.lists(st.one_of(st.text(max_size=12), ESCAPES), max_size=6).map("".join)
QUOTE = st.sampled_from(["'", '"'])
MAC = st.one_of(
    st.lists(st.integers(0, 255), min_size=6, max_size=6).map(
        lambda octets: ":".join(f"{o:02x}" for o in octets)
    ),
    st.sampled_from(["00:16:3e:00:00:01", "ff:ff:ff:ff:ff:ff", "00:00:00:00:00:00", "0:1"]),
)
VDEV = st.one_of(
    st.from_regex(r"(xvd|hd|sd)[a-z]{1,2}[0-9]{0,2}", fullmatch=True),
    st.from_regex(r"d[0-9]{1,2}(p[0-9])?", fullmatch=True),
    st.sampled_from(["floppy", "xvda0", "/dev/xvda1", "51712", ""]),
)
TARGET = st.sampled_from(["/dev/vg0/a", "/srv/x.img", "", "iqn:x", "/a,b", "hda1"])
DISK_SPEC = st.one_of(
    st.tuples(
        st.sampled_from(["phy:", "file:", "tap:aio:", "tap2:tapdisk:aio:", "raw:", "zfs:", ""]),
        TARGET,
        VDEV,
        st.sampled_from(["w", "r", "rw", "ro", "w!", "x", ""]),
        st.sampled_from(["", ":cdrom", ":disk", ":tape"]),
    ).map(lambda t: f"{t[0]}{t[1]},{t[2]}{t[4]},{t[3]}"),
    st.lists(
        st.one_of(
            st.tuples(
                st.sampled_from(["vdev", "target", "format", "access", "devtype", "backendtype"]),
                st.text(max_size=8),
            ).map("=".join),
            st.sampled_from(["cdrom", "discard", "no-discard", "direct-io-safe", "foo"]),
        ),
        max_size=6,
    ).map(", ".join),
    st.text(max_size=40),
)
VIF_SPEC = st.lists(
    st.one_of(
        MAC.map(lambda mac: f"mac={mac}"),
        st.tuples(
            st.sampled_from(["bridge", "ip", "model", "vifname", "script", "rate", "type", ""]),
            st.text(max_size=8),
        ).map("=".join),
        st.text(max_size=8),
    ),
    max_size=5,
).map(",".join)


def _quoted(draw: st.DrawFn, body: str) -> str:
    quote = draw(QUOTE)
    return quote + body.replace(quote, "\\" + quote) + quote


@st.composite
def values(draw: st.DrawFn, key: str, depth: int = 0) -> str:
    if key == "disk" and draw(st.booleans()):
        specs = draw(st.lists(DISK_SPEC, max_size=4))
        return "[ " + ", ".join(_quoted(draw, spec) for spec in specs) + " ]"
    if key == "vif" and draw(st.booleans()):
        specs = draw(st.lists(VIF_SPEC, max_size=4))
        return "[ " + ",\n  ".join(_quoted(draw, spec) for spec in specs) + " ]"
    kind = draw(st.sampled_from(["number", "string", "list", "junk"] if depth < 6 else ["number"]))
    if kind == "number":
        return draw(NUMBERS)
    if kind == "string":
        return _quoted(draw, draw(STRING_BODY))
    if kind == "list":
        items = draw(st.lists(values(key, depth + 1), max_size=4))
        separator = draw(st.sampled_from([", ", ",\n", ",", " "]))
        return "[" + separator.join(items) + draw(st.sampled_from(["]", ",]", "", "\n]"]))
    return draw(st.sampled_from(["web01", "True", "(1, 2)", "{}", "1 + 2", "'a' % b", ""]))


@st.composite
def configs(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 10))):
        key = draw(st.one_of(KEYS, IDENT))
        op = draw(st.sampled_from(["=", "=", "=", "+=", " = ", "==", ""]))
        comment = draw(st.sampled_from(["", "", "  # note", ";"]))
        lines.append(f"{key}{op}{draw(values(key))}{comment}")
    text = "\n".join(lines) + draw(st.sampled_from(["\n", "", "\r\n", "\n\n"]))
    if draw(st.booleans()):  # one random edit: a character in, or a slice out
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.characters()) + text[at:]
    return text


@FUZZ
@given(configs())
def test_generated_configs_parse_or_are_one_config_error(text):
    parse_or_error(text)


# --------------------------------------------------------------------------- render


@settings(FUZZ, max_examples=100)
@given(text=configs())
def test_whatever_parses_renders_well_formed_xml_or_a_clean_error(fleet, text):
    domain = parse_or_error(text)
    if domain is None:
        return
    guest = dataclasses.replace(fleet.guests["www.example.net"], name="fuzz", domain_name="fuzz")
    try:
        xml = domain_xml(plan_domain(guest, fleet.kvm_hosts["kvm-a.example.net"], domain), "x", "y")
    except Xen2KvmError:
        return
    ET.fromstring(xml)


PRINTABLE = st.characters(min_codepoint=32, max_codepoint=126) | st.characters(min_codepoint=160)
NAMES = st.from_regex(r"[a-z0-9][a-z0-9.-]{0,40}", fullmatch=True)
UNICAST_MACS = st.lists(st.integers(0, 255), min_size=6, max_size=6).map(
    lambda octets: ":".join(f"{o:02x}" for o in [octets[0] & 0xFE | 0x02, *octets[1:]])
)


@st.composite
def valid_domains(draw: st.DrawFn) -> tuple[str, dict]:
    """A config that must parse, with what the XML must say."""
    name = draw(NAMES)
    memory = draw(st.integers(MIN_MEMORY_MIB, MAX_MEMORY_MIB))
    vcpus = draw(st.integers(1, MAX_VCPUS))
    macs = draw(st.lists(UNICAST_MACS, max_size=4, unique=True))
    partitions = draw(st.integers(1, 8))
    extra = draw(st.text(alphabet=PRINTABLE, max_size=40))
    disk = ", ".join(f"'phy:/dev/vg0/{name}-{i},xvda{i},w'" for i in range(1, partitions + 1))
    vif = ", ".join(f"'mac={mac},bridge=xenbr0'" for mac in macs)
    text = (
        f"name = '{name}'\nmemory = {memory}\nvcpus = '{vcpus}'\n"
        f"extra = {extra!r}\ndisk = [ {disk} ]\nvif = [ {vif} ]\n"
    )
    return text, {"name": name, "memory": memory, "vcpus": vcpus, "macs": macs}


def _render(fleet, domain: XenDomain) -> str:
    guest = dataclasses.replace(
        fleet.guests["www.example.net"], name=domain.name, domain_name=domain.name, macs=()
    )
    guest = dataclasses.replace(guest, memory_mib=None, vcpus=None)
    plan = plan_domain(guest, fleet.kvm_hosts["kvm-a.example.net"], domain)
    return domain_xml(plan, "xen<&>'\"", "/etc/xen/<&>'\".cfg")


@settings(FUZZ, max_examples=60)
@given(valid_domains())
def test_valid_domains_render_to_the_xml_they_describe(fleet, case):
    text, want = case
    root = ET.fromstring(_render(fleet, parse_xen_config(text, "valid.cfg")))
    assert root.findtext("name") == want["name"]
    assert root.findtext("currentMemory") == str(want["memory"])
    assert root.findtext("vcpu") == str(want["vcpus"])
    macs = [mac.get("address") for mac in root.findall("devices/interface/mac")]
    assert macs[: len(want["macs"])] == want["macs"]


@settings(FUZZ, max_examples=3)
@given(valid_domains())
def test_a_sample_of_valid_domains_passes_virt_xml_validate(fleet, case):
    text, _ = case
    xml = _render(fleet, parse_xen_config(text, "valid.cfg"))
    fd, path = tempfile.mkstemp(suffix=".xml")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(xml)
        check = subprocess.run(
            ["virt-xml-validate", path, "domain"], capture_output=True, text=True, check=False
        )
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        os.unlink(path)
