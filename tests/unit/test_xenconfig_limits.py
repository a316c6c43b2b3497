"""The Xen parser's bounds: hostile or absurd input is one ``XenConfigError`` naming the line."""

from __future__ import annotations

import pytest

from xen2kvm.errors import XenConfigError
from xen2kvm.xenconfig import (
    MAX_DEVICES,
    MAX_FILE_BYTES,
    MAX_LINE_CHARS,
    MAX_LIST_DEPTH,
    MAX_LIST_ITEMS,
    MAX_STRING_CHARS,
    load_xen_config,
    parse_xen_config,
)

GOOD = "name = 'web01'\nmemory = 256\ndisk = [ 'phy:/dev/vg0/web01-root,xvda1,w' ]\n"


def refusal(text: str) -> XenConfigError:
    with pytest.raises(XenConfigError) as info:
        parse_xen_config(text, "g.cfg")
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ("memory = 1" + "0" * 5000 + "\n", 1, None, "line longer than 4096 characters"),
        ("memory = 1" + "0" * 100 + "\n", 1, "memory", "number longer than 20"),
        ("memory = '1" + "0" * 100 + "'\n", 1, "memory", "number longer than 20 digits"),
        ("memory = 0x" + "f" * 100 + "\n", 1, "memory", "number longer than 20"),
        ("memory = 16777217\n", 1, "memory", "more than the 16777216 MiB"),
        ("maxmem = 99999999999\n", 1, "maxmem", "more than the 16777216 MiB"),
        ("vcpus = 4097\n", 1, "vcpus", "more than the 4096"),
        ("maxvcpus = 100000\n", 1, "maxvcpus", "more than the 4096"),
        ("x = " + "[" * 1000 + "]" * 1000 + "\n", 1, "x", f"nested more than {MAX_LIST_DEPTH}"),
        ("x = [[[[[ ]]]]]\n", 1, "x", f"nested more than {MAX_LIST_DEPTH}"),
        ("x = [" + "1," * (MAX_LIST_ITEMS + 1) + "]\n", 1, "x", "more than 256 items"),
        ("x = [1]\n" + "x += [1]\n" * MAX_LIST_ITEMS, 257, "x", "'+=' makes the list longer"),
        ("extra = '" + "a\\\n" * (MAX_STRING_CHARS + 1) + "'\n", 1, "extra", "string longer"),
        ("x = 'a'\n" + ("x += '" + "a" * 4000 + "'\n") * 2, 3, "x", "makes the string longer"),
        ("name = 'web\\n'\n", 1, "name", "control character '\\n'"),
        ("name = 'web\\0'\n", 1, "name", "control character '\\x00'"),
        ("name = 'w\\x1beb'\n", 1, "name", "control character '\\x1b'"),
        ("extra = 'a\\x7f'\n", 1, "extra", "control character '\\x7f'"),
        ("name = ''\n", 1, "name", "is empty"),
        ("name = 'a'\nmemory = 256\nname = 'b'\n", 3, "name", "set twice, on line 1 and on line 3"),
        ("uuid = 'not-a-uuid'\n", 1, "uuid", "is not a UUID"),
        ("\nuuid = '{5b0f4f2e-3c1a-4d5e-9f80-2a1b3c4d5e6f}'\n", 2, "uuid", "is not a UUID"),
        ("uuid = '5b0f4f2e3c1a4d5e9f802a1b3c4d5e6f'\n", 1, "uuid", "is not a UUID"),
        ("vif = [ 'mac=01:16:3e:00:00:01' ]\n", 1, "vif", "is a multicast address"),
        ("vif = [ 'mac=ff:ff:ff:ff:ff:ff' ]\n", 1, "vif", "is a multicast address"),
        ("vif = [ 'mac=00:00:00:00:00:00' ]\n", 1, "vif", "is all zeros"),
        ("vif = [ 'mac=00:16:3e:00:00:01,bridge=a,mac=00:16:3e:00:00:02' ]\n", 1, "vif", "twice"),
        (
            "vif = [ 'mac=00:16:3e:00:00:01',\n        'mac=00:16:3E:00:00:01' ]\n",
            2,
            "vif",
            "mac 00:16:3E:00:00:01 is used twice (first on line 1)",
        ),
        (
            "disk = [" + ",".join(f"'phy:/dev/vg0/d{i},xvda{i + 1},w'" for i in range(65)) + "]\n",
            1,
            "disk",
            f"65 entries: at most {MAX_DEVICES}",
        ),
        ("vif = [" + "'bridge=br0'," * 65 + "]\n", 1, "vif", "65 entries"),
        ("name = 'a'\n" + "#" * (MAX_LINE_CHARS + 1) + "\n", 2, None, "line longer than 4096"),
        ("name = 'a'\x00\n", 1, "name", "unexpected '\\x00'"),
        ("\x00", 1, None, "found '\\x00'"),
        ("name = 'a\udcff'\n", 1, "name", "control character '\\udcff'"),
    ],
)
def test_hostile_config_is_one_error_naming_the_line(text, line, key, words):
    error = refusal(text)
    assert (error.filename, error.line, error.key) == ("g.cfg", line, key)
    assert words in str(error)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", " ; ;\n"])
def test_a_config_without_assignments_is_refused(text):
    error = refusal(text)
    assert "holds no 'key = value' line" in str(error)
    assert error.line is None


def test_a_huge_text_is_refused_before_it_is_read():
    error = refusal("#" * (MAX_FILE_BYTES + 1))
    assert "larger than 1 MiB" in str(error)


def test_limits_leave_room_for_real_configs():
    dom = parse_xen_config(
        "name = 'a'\nmemory = 16777216\nvcpus = 4096\n"
        "uuid = '5B0F4F2E-3c1a-4d5e-9f80-2a1b3c4d5e6f'\n"
        "vnuma = [ [ 'pnode=0', 'size=512', 'vcpus=0-1', 'vdistances=10,20' ] ]\n"
        "disk = [" + ",".join(f"'phy:/dev/vg0/d{i},xvda{i + 1},w'" for i in range(64)) + "]\n"
        "vif = [ 'mac=00:16:3e:00:00:01', 'mac=02:00:00:00:00:01' ]\n"
        "extra = '" + "a" * 4000 + "\\\n" + "a" * (MAX_STRING_CHARS - 4000) + "'\n"
        "x = [ 1 ]\n" + "x += [ 1 ]\n" * (MAX_LIST_ITEMS - 1)
    )
    assert (dom.memory_mib, dom.vcpus, len(dom.disks), len(dom.raw["x"])) == (
        16777216,
        4096,
        64,
        MAX_LIST_ITEMS,
    )


def test_tabs_stay_allowed_in_strings():
    assert parse_xen_config("extra = 'a\\tb'\n").extra == "a\tb"


# --------------------------------------------------------------------------- files


def test_a_file_that_is_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.cfg"
    path.write_bytes(b"name = 'a'\n# Gr\xfc\xdfe\nmemory = 256\n")
    with pytest.raises(XenConfigError) as info:
        load_xen_config(path)
    assert info.value.line == 2
    assert "byte 0xfc is not UTF-8" in str(info.value)
    assert "iconv" in str(info.value)


def test_a_huge_file_is_refused_without_reading_it_all(tmp_path):
    path = tmp_path / "huge.cfg"
    path.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(XenConfigError, match="larger than 1 MiB"):
        load_xen_config(path)


def test_a_byte_order_mark_is_skipped(tmp_path):
    path = tmp_path / "bom.cfg"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert load_xen_config(path).name == "web01"


def test_a_directory_is_a_clean_error(tmp_path):
    with pytest.raises(XenConfigError, match="cannot read"):
        load_xen_config(tmp_path)
