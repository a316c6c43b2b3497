"""The Xen domain config parser: real configs, disk and vif specs, and every error case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xen2kvm.errors import XenConfigError
from xen2kvm.xenconfig import (
    XenDisk,
    load_xen_config,
    parse_disk_spec,
    parse_vif_spec,
    parse_xen_config,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "xen"
CONFIGS = sorted(p.stem for p in DATA.glob("*.cfg"))


def test_there_are_a_dozen_real_world_configs():
    assert len(CONFIGS) >= 12
    assert all((DATA / f"{name}.json").exists() for name in CONFIGS)


@pytest.mark.parametrize("name", CONFIGS)
def test_real_world_config(name):
    path = DATA / f"{name}.cfg"
    expected = json.loads((DATA / f"{name}.json").read_text())
    if "error" in expected:
        with pytest.raises(XenConfigError) as info:
            load_xen_config(path)
        want = expected["error"]
        assert (info.value.filename, info.value.line, info.value.key) == (
            str(path),
            want["line"],
            want["key"],
        )
        assert want["message"] in str(info.value)
    else:
        assert load_xen_config(path).to_json() == expected


# --------------------------------------------------------------------------- disk specs

D = XenDisk


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("phy:/dev/vg/web-disk,xvda2,w", D("/dev/vg/web-disk", "xvda2", "rw", backend="phy")),
        ("file:/srv/xen/x.img,hda1,w", D("/srv/xen/x.img", "hda1", "rw", backend="file")),
        ("tap:aio:/x.img,xvda,w", D("/x.img", "xvda", "rw", backend="tap")),
        ("tap:qcow2:/x.qcow2,xvda,w", D("/x.qcow2", "xvda", "rw", "qcow2", "tap")),
        ("tap:vhd:/x.vhd,xvdb,r", D("/x.vhd", "xvdb", "ro", "vhd", "tap")),
        ("tap2:tapdisk:aio:/x.img,xvda,w", D("/x.img", "xvda", "rw", backend="tap")),
        ("phy:/dev/cdrom,hdc:cdrom,r", D("/dev/cdrom", "hdc", "ro", backend="phy", cdrom=True)),
        (",hdc:cdrom,r", D(None, "hdc", "ro", cdrom=True)),
        ("phy:/dev/vg/quorum,xvdb,w!", D("/dev/vg/quorum", "xvdb", "rw", backend="phy")),
        ("phy:hda1,hda1,w", D("/dev/hda1", "hda1", "rw", backend="phy")),
        ("file:/x.img,ioemu:hda,w", D("/x.img", "hda", "rw", backend="file")),
        ("file:/x.img,hda:disk,w", D("/x.img", "hda", "rw", backend="file")),
        ("/dev/vg/guest-volume,raw,xvda,rw", D("/dev/vg/guest-volume", "xvda", "rw")),
        ("/dev/vg/guest-volume,,hda", D("/dev/vg/guest-volume", "hda", "rw")),
        ("/dev/vg/guest-volume,raw,xvda,ro", D("/dev/vg/guest-volume", "xvda", "ro")),
        ("raw:/dev/vg/guest-volume,hda,w", D("/dev/vg/guest-volume", "hda", "rw")),
        (
            "format=raw, vdev=hda, access=rw, target=/dev/vg/guest-volume",
            D("/dev/vg/guest-volume", "hda", "rw"),
        ),
        ("/root/image.iso,,hdc,cdrom", D("/root/image.iso", "hdc", "ro", cdrom=True)),
        ("/root/image.iso,,hdc,,cdrom", D("/root/image.iso", "hdc", "ro", cdrom=True)),
        ("/root/image.iso,raw,hdc,devtype=cdrom", D("/root/image.iso", "hdc", "ro", cdrom=True)),
        (
            "format=raw, vdev=hdc, access=ro, devtype=cdrom, target=/root/image.iso",
            D("/root/image.iso", "hdc", "ro", cdrom=True),
        ),
        ("raw:/root/image.iso,hdc:cdrom,ro", D("/root/image.iso", "hdc", "ro", cdrom=True)),
        (
            "vdev=xvda, backendtype=qdisk, format=qcow2, target=/srv/a,b.qcow2",
            D("/srv/a,b.qcow2", "xvda", "rw", "qcow2", "qdisk"),
        ),
        ("vdev=xvda2, target=/dev/vg0/db-disk", D("/dev/vg0/db-disk", "xvda2", "rw")),
        ("/x.img,qcow2,xvdb,w,backendtype=tap", D("/x.img", "xvdb", "rw", "qcow2", "tap")),
        ("/dev/sdb,,sdb,backendtype=phy", D("/dev/sdb", "sdb", "rw", backend="phy")),
    ],
)
def test_disk_spec(spec, expected):
    disk = parse_disk_spec(spec)
    assert disk.to_json() == expected.to_json()
    assert disk.spec == spec


def test_disk_spec_keeps_flags_and_scripts_in_options():
    disk = parse_disk_spec("vdev=xvda, script=block-iscsi, discard, direct-io-safe, target=iqn:x")
    assert disk.options == {"script": "block-iscsi", "discard": "1", "direct-io-safe": "1"}
    assert parse_disk_spec("drbd:r0,xvda,w").options == {"script": "block-drbd"}
    assert parse_disk_spec("/x,,xvda,backend=driverdom").options == {"backend": "driverdom"}


def test_disk_spec_remembers_file_and_line():
    disk = parse_disk_spec("phy:/dev/vg0/x,xvda1,w", "a.cfg", 7)
    assert disk.line == 7


@pytest.mark.parametrize(
    ("vdev", "number", "name"),
    [
        ("xvda2", 2, "xvda"),
        ("xvda", None, "xvda"),
        ("hdc", None, "hdc"),
        ("hda1", 1, "hda"),
        ("sdb15", 15, "sdb"),
        ("xvdaa3", 3, "xvdaa"),
        ("d0p1", 1, "d0"),
        ("d1", None, "d1"),
    ],
)
def test_partition_number_and_disk_name(vdev, number, name):
    disk = XenDisk("/dev/x", vdev, "rw")
    assert (disk.partition_number, disk.disk_name) == (number, name)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("/dev/vg/x,xvda,w", "unknown format 'xvda' (an old-style spec needs a prefix"),
        ("phy:/dev/vg/x,xvda,w,foo=bar", "unknown disk spec element 'foo=bar'"),
        ("phy:/dev/vg/x,xvda,x", "unknown access 'x'"),
        ("phy:/dev/vg/x,xvda,w,extra", "too many positional parameters"),
        ("zfs:/tank/x,xvda,w", "unknown prefix 'zfs:'"),
        ("phy:/dev/x,hdc:tape,r", "unknown device type 'tape'"),
        ("/x,,xvda,devtype=floppy", "unknown devtype 'floppy'"),
        ("/x,,xvda,backendtype=nbd", "unknown backendtype 'nbd'"),
        ("/x,vmdk,xvda", "unknown format 'vmdk'"),
        ("phy:/dev/vg/x,floppy0,w", "'floppy0' is not a Xen/Linux virtual device name"),
        ("phy:/dev/vg/x,xvda0,w", "'xvda0' is not a Xen/Linux virtual device name"),
        ("phy:/dev/vg/x", "no vdev"),
        ("phy:,xvda,w", "no target"),
        ("/a,,xvda,target=/b", "target given twice"),
        ("/a,raw,xvda,format=qcow2", "format given twice"),
    ],
)
def test_bad_disk_spec_names_file_line_and_key(spec, words):
    with pytest.raises(XenConfigError) as info:
        parse_disk_spec(spec, "guest.cfg", 12)
    assert (info.value.filename, info.value.line, info.value.key) == ("guest.cfg", 12, "disk")
    assert words in str(info.value)
    assert str(info.value).startswith("guest.cfg:12: key 'disk':")


# --------------------------------------------------------------------------- vif specs


def test_empty_vif_is_a_default_vif():
    vif = parse_vif_spec("")
    assert vif.to_json() == {
        "mac": None,
        "bridge": None,
        "ip": [],
        "model": None,
        "vifname": None,
        "script": None,
        "rate": None,
    }


def test_vif_spec_reads_every_known_key_and_keeps_the_rest():
    vif = parse_vif_spec(
        "mac=00:16:3e:00:00:11, bridge=xenbr0, ip=192.0.2.1 192.0.2.2, model=e1000,"
        " vifname=web-eth0, script=vif-route, rate=10Mb/s, type=ioemu, backend=netdom,"
    )
    assert vif.mac == "00:16:3e:00:00:11"
    assert vif.bridge == "xenbr0"
    assert vif.ip == ("192.0.2.1", "192.0.2.2")
    assert (vif.model, vif.vifname, vif.script, vif.rate) == (
        "e1000",
        "web-eth0",
        "vif-route",
        "10Mb/s",
    )
    assert vif.extra == {"type": "ioemu", "backend": "netdom"}


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("mac=00:16:3e:00:11", "mac '00:16:3e:00:11' is not of the form"),
        ("mac=00:16:3e:00:00:zz", "is not of the form xx:xx:xx:xx:xx:xx"),
        ("mac=00-16-3e-00-00-11", "is not of the form"),
        ("bridge=xenbr0, xenbr1", "'xenbr1' is not key=value"),
    ],
)
def test_bad_vif_spec_names_file_line_and_key(spec, words):
    with pytest.raises(XenConfigError) as info:
        parse_vif_spec(spec, "guest.cfg", 4)
    assert (info.value.filename, info.value.line, info.value.key) == ("guest.cfg", 4, "vif")
    assert words in str(info.value)


# --------------------------------------------------------------------------- file syntax


def test_unknown_keys_are_kept_with_their_lines():
    dom = parse_xen_config(
        "name = 'a'\n# comment\nvnclisten = '127.0.0.1'\npci = [ '07:00.0', '07:00.1' ]\n"
        "viridian = 1\n"
    )
    assert dom.raw["vnclisten"] == "127.0.0.1"
    assert dom.raw["pci"] == ["07:00.0", "07:00.1"]
    assert dom.raw["viridian"] == 1
    assert dom.lines == {"name": 1, "vnclisten": 3, "pci": 4, "viridian": 5}


def test_lists_span_lines_with_comments_and_trailing_commas():
    dom = parse_xen_config(
        "disk = [\n"
        "  'phy:/dev/vg0/a,xvda1,w',  # root\n"
        "  # nothing here\n"
        "\n"
        "  'phy:/dev/vg0/b,xvda2,w',\n"
        "]\n",
        "multi.cfg",
    )
    assert [d.vdev for d in dom.disks] == ["xvda1", "xvda2"]
    assert [d.line for d in dom.disks] == [2, 5]
    assert dom.lines["disk"] == 1


def test_semicolons_no_spaces_hex_and_octal():
    dom = parse_xen_config("memory=0x200;vcpus=2 ; maxmem=01000;name='a'")
    assert (dom.memory_mib, dom.vcpus, dom.maxmem_mib, dom.name) == (512, 2, 512, "a")


def test_string_escapes():
    dom = parse_xen_config(r"""extra = 'a\'b\\c\td "q" \x41\101'""" + "\n")
    assert dom.extra == 'a\'b\\c\td "q" AA'


def test_quoted_numbers_as_xen_tools_writes_them():
    dom = parse_xen_config("memory = '256'\nvcpus = \"2\"\n")
    assert (dom.memory_mib, dom.vcpus) == (256, 2)


def test_cpus_is_kept_as_given():
    assert parse_xen_config("cpus = '0-3,^1'").cpus == "0-3,^1"
    assert parse_xen_config("cpus = ['2', '3']").cpus == ["2", "3"]
    assert parse_xen_config("name='x'").cpus is None


def test_cmdline_wins_over_extra_as_in_xl():
    dom = parse_xen_config("root='/dev/xvda1 ro'\nextra='quiet'\ncmdline='root=/dev/xvda2'\n")
    assert (dom.extra, dom.root) == ("root=/dev/xvda2", "/dev/xvda1 ro")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("name='x'", "pv"),
        ("builder='linux'", "pv"),
        ("builder='hvm'", "hvm"),
        ("type='pvh'", "pvh"),
        ("type='pv'\nbuilder='hvm'", "pv"),
    ],
)
def test_domain_type(text, kind):
    assert parse_xen_config(text).type == kind


def test_absent_keys_are_none_or_empty():
    dom = parse_xen_config("name = 'a'\n")
    assert dom.to_json() == {
        "name": "a",
        "type": "pv",
        "memory_mib": None,
        "maxmem_mib": None,
        "vcpus": None,
        "disks": [],
        "vifs": [],
        "kernel": None,
        "ramdisk": None,
        "bootloader": None,
        "root": None,
        "extra": None,
        "on_poweroff": None,
        "on_reboot": None,
        "on_crash": None,
    }


def test_plus_equals_appends_and_keeps_the_first_line():
    dom = parse_xen_config("vif = [ 'bridge=br0' ]\nextra = 'a'\nvif += [ 'bridge=br1' ]\n")
    assert [v.bridge for v in dom.vifs] == ["br0", "br1"]
    assert dom.lines["vif"] == 1


def test_a_key_set_twice_is_refused_naming_both_lines():
    with pytest.raises(XenConfigError) as info:
        parse_xen_config("memory = 256\nname = 'a'\nmemory = 512\n", "g.cfg")
    assert (info.value.line, info.value.key) == (3, "memory")
    assert "set twice, on line 1 and on line 3" in str(info.value)


def test_domain_is_hashable_enough_for_sets_of_disks():
    dom = parse_xen_config("disk=['phy:/dev/vg0/a,xvda1,w','phy:/dev/vg0/b,xvda2,w']")
    assert len(set(dom.disks)) == 2


# --------------------------------------------------------------------------- file errors


@pytest.mark.parametrize(
    ("text", "line", "key", "words"),
    [
        ("name = 'web\nmemory = 64\n", 1, "name", "unterminated string"),
        ("name = 'a'\nextra = \"console=hvc0\n", 2, "extra", "unterminated string"),
        ("memory = 64\ndisk = [ 'phy:/dev/vg0/a,xvda,w',\n", 2, "disk", "never closed"),
        (
            "disk = [ 'phy:/dev/vg0/a,xvda,w'\nvif = [ '' ]\n",
            1,
            "disk",
            "expected ',' or ']', found 'vif' on line 2",
        ),
        ("memory = 64\nthis is not an assignment\n", 2, None, "not an assignment"),
        ("memory = 64\n'stray string'\n", 2, None, "expected 'key = value'"),
        ('memory = "lots"\n', 1, "memory", "expected a whole number, got 'lots'"),
        ("name = 'a'\nmemory = 64M\n", 2, "memory", "'64M' is not a whole number"),
        ("vcpus = [ 1, 2 ]\n", 1, "vcpus", "expected a whole number"),
        ("name = [ 'a' ]\n", 1, "name", "expected a string, got a list"),
        ("disk = 'phy:/dev/vg0/a,xvda,w'\n", 1, "disk", "expected a list"),
        ("vif = [ 1 ]\n", 1, "vif", "expected strings in the list"),
        ("memory = 0\n", 1, "memory", "must be a positive number"),
        ("\n\nmemory = -128\n", 3, "memory", "must be a positive number"),
        ("vcpus = 0\n", 1, "vcpus", "must be a positive number"),
        ('name = "VM%d" % vmid\n', 1, "name", "unexpected '%' after the value"),
        ("name = web01\n", 1, "name", "unquoted value 'web01'"),
        ("memory =\n", 1, "memory", "expected a value"),
        ("type = 'xen'\n", 1, "type", "unknown type 'xen'"),
        ("builder = 'vmx'\n", 1, "builder", "unknown builder 'vmx'"),
        ("x = 'a'\nx += [ 'b' ]\n", 2, "x", "'+=' needs"),
        (
            "disk = [ 'phy:/dev/vg0/a,xvda1,w',\n         'phy:/dev/vg0/b,xvda1,w' ]\n",
            2,
            "disk",
            "vdev 'xvda1' is used twice (first on line 1)",
        ),
        ("\ndisk = [ 'phy:/dev/vg0/a,xvda,w,bogus=1' ]\n", 2, "disk", "unknown disk spec"),
        (
            "disk = [ 'phy:/dev/vg0/a,floppy,w' ]\n",
            1,
            "disk",
            "not a Xen/Linux virtual device name",
        ),
        (
            "vif = [ '',\n        'mac=00:16:3e:xx:00:01' ]\n",
            2,
            "vif",
            "is not of the form xx:xx:xx:xx:xx:xx",
        ),
    ],
)
def test_bad_config_names_file_line_and_key(text, line, key, words):
    with pytest.raises(XenConfigError) as info:
        parse_xen_config(text, "/etc/xen/guest.cfg")
    assert (info.value.filename, info.value.line, info.value.key) == (
        "/etc/xen/guest.cfg",
        line,
        key,
    )
    assert words in str(info.value)
    assert str(info.value).startswith(f"/etc/xen/guest.cfg:{line}:")
    if key:
        assert f"key {key!r}" in str(info.value)


def test_missing_file_is_a_config_error_naming_the_path(tmp_path):
    path = tmp_path / "nope.cfg"
    with pytest.raises(XenConfigError) as info:
        load_xen_config(path)
    assert info.value.filename == str(path)
    assert "cannot read" in str(info.value)


def test_errors_from_a_file_name_the_path(tmp_path):
    path = tmp_path / "bad.cfg"
    path.write_text("name = 'bad'\nmemory = 'lots'\n")
    with pytest.raises(XenConfigError, match=rf"^{path}:2: key 'memory':"):
        load_xen_config(path)
