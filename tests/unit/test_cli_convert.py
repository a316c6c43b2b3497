"""``xen2kvm convert``: run as an operator would; every test config becomes a domain that
libvirt's schema accepts (with ``--force`` where the migration refuses it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from xen2kvm import render
from xen2kvm.cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "xen"
WWW = DATA.parent / "guests" / "www.example.net.cfg"
# Configs that parse (their expected JSON is an object, not an error).
CONFIGS = sorted(
    p for p in DATA.glob("*.cfg") if "error" not in json.loads(p.with_suffix(".json").read_text())
)
# Their vifs are on several Xen bridges: without an inventory (bridges), only --force.
SEVERAL_BRIDGES = {"multi-vif-routed", "xl-compact-escapes"}
# Those the migration refuses: HVM, or a whole disk (its own partition table).
REFUSED = {
    "cdrom-hvm-install": "key 'builder': an HVM domain",
    "multi-vif-routed": "key 'disk': xvda is a whole disk",
    "tap-aio-qcow2": "key 'disk': xvdb is a whole disk",
    "xl-keyvalue-comma": "key 'type': an HVM domain",
    "xlexample.hvm": "key 'type': an HVM domain",
    "xlexample.pvhlinux": "key 'disk': xvda is a whole disk",
    "xlexample.pvlinux": "key 'disk': xvda is a whole disk",
    "xmexample.hvm": "key 'builder': an HVM domain",
}
GOOD = DATA / "xen-tools-xm-kernel.cfg"


def convert(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed command, as a user runs it."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "xen2kvm"), "convert", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """In process: exit status, stdout, stderr (argparse's exits included)."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["virt-xml-validate", str(path), "domain"], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_parsable_config_converts_to_a_valid_domain(config, tmp_path):
    out = tmp_path / "domain.xml"
    force = ["--force"] if config.stem in REFUSED or config.stem in SEVERAL_BRIDGES else []
    result = convert(str(config), "--name", "guest1", "-o", str(out), *force)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    check = validate(out)
    assert check.returncode == 0, check.stdout + check.stderr
    expected = json.loads(config.with_suffix(".json").read_text())
    root = ET.parse(out).getroot()
    macs = [m.get("address") for m in root.findall("devices/interface/mac")]
    assert len(macs) == max(len(expected["vifs"]), 1)
    for mac, vif in zip(macs, expected["vifs"], strict=False):
        assert mac == (vif["mac"].lower() if vif["mac"] else mac)
        assert vif["mac"] or mac.startswith("52:54:00:")
    if expected["memory_mib"]:
        assert root.findtext("currentMemory") == str(expected["memory_mib"])


def test_vifs_on_several_xen_bridges_are_refused_without_an_inventory(tmp_path):
    out = tmp_path / "domain.xml"
    result = convert(str(DATA / "xl-compact-escapes.cfg"), "--name", "guest1", "-o", str(out))
    assert result.returncode == 2
    assert result.stderr.startswith(
        "xen2kvm: error: guest1: vif: vif 0 is on the Xen bridge 'xenbr0', which kvm's bridges"
    )
    assert not out.exists()


def test_force_joins_vifs_on_several_xen_bridges_to_one_bridge_and_says_so(tmp_path):
    out = tmp_path / "domain.xml"
    config = str(DATA / "xl-compact-escapes.cfg")
    result = convert(config, "--name", "g1", "--bridge", "br7", "-o", str(out), "--force")
    assert result.returncode == 0, result.stderr
    assert "several Xen bridges (xenbr0, xenbr1): all join br7" in result.stderr
    sources = ET.parse(out).getroot().findall("devices/interface/source")
    assert [source.get("bridge") for source in sources] == ["br7", "br7"]


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_configs_the_migration_refuses_are_refused_naming_the_line(name, tmp_path):
    out = tmp_path / "domain.xml"
    result = convert(str(DATA / f"{name}.cfg"), "--name", "guest1", "-o", str(out))
    assert result.returncode == 2
    assert result.stderr.startswith(f"xen2kvm: error: {DATA / name}.cfg: line ")
    assert REFUSED[name] in result.stderr
    assert result.stderr.endswith("(--force converts it anyway)\n")
    assert result.stderr.count("\n") == 1
    assert not out.exists()


def test_force_converts_with_one_warning_per_refusal(capsys):
    code, out, err = run(
        capsys, "convert", str(DATA / "xmexample.hvm.cfg"), "--name", "x", "--force"
    )
    assert code == 0
    assert out.startswith("<domain type='kvm'>")
    warnings = [line for line in err.splitlines() if line.startswith("xen2kvm: warning: ")]
    assert len(warnings) == 2  # HVM, and hda is a whole disk
    assert "line 14: key 'builder': an HVM domain" in warnings[0]
    assert "line 81: key 'disk': hda is a whole disk" in warnings[1]
    assert all(w.endswith("(converted anyway: --force)") for w in warnings)


def test_a_config_without_a_disk_is_refused(tmp_path, capsys):
    cfg = tmp_path / "nodisk.cfg"
    cfg.write_text("name = 'nodisk'\nmemory = 256\ndisk = [ ',hdc:cdrom,r' ]\n")
    code, out, err = run(capsys, "convert", str(cfg))
    assert (code, out) == (2, "")
    assert f"{cfg}: line 3: key 'disk': no disk but cdroms or none" in err


def test_an_empty_config_is_refused(tmp_path, capsys):
    cfg = tmp_path / "empty.cfg"
    cfg.write_text("")
    code, out, err = run(capsys, "convert", str(cfg), "--name", "x", "--force")
    assert (code, out) == (2, "")
    assert err.startswith(f"xen2kvm: error: {cfg}: holds no 'key = value' line")


def test_the_xml_starts_with_the_domain_element(capsys):
    code, out, _ = run(capsys, "convert", str(GOOD))
    assert code == 0
    assert out.startswith("<domain type='kvm'>\n")
    assert out.endswith("</domain>\n")


def test_options_reach_the_xml():
    result = convert(
        str(WWW),
        "--vg", "vg_kvm", "--lv", "www", "--bridge", "br1", "--virt-type", "qemu",
        "--memory", "3G", "--vcpus", "3", "--new-macs", "--no-serial",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    root = ET.fromstring(result.stdout)
    assert root.get("type") == "qemu"
    assert root.find("devices/disk/source").get("dev") == "/dev/vg_kvm/www"
    assert root.find("devices/interface/source").get("bridge") == "br1"
    assert root.find("devices/interface/mac").get("address").startswith("52:54:00:")
    assert (root.findtext("memory"), root.findtext("vcpu")) == ("3072", "3")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--bridge", "br0;x"], "argument --bridge: 'br0;x' is not an interface name"),
        (["--vg=-bad"], "argument --vg: '-bad' is not a valid LVM name"),
        (["--lv", ".."], "argument --lv: '..' is not a valid LVM name"),
        (["--memory", "lots"], "argument --memory: not a size: 'lots'"),
        (["--memory", "100K"], "argument --memory: '100K' is outside 16M to 16T"),
        (["--memory", "17T"], "argument --memory: '17T' is outside 16M to 16T"),
        (["--memory", "100.5M"], "argument --memory: '100.5M' is not a whole number of MiB"),
        (["--memory", "1" + "0" * 5000], "argument --memory: not a size: a very long string"),
        (["--vcpus", "0"], "argument --vcpus: '0' is not a whole number from 1 to 4096"),
        (["--vcpus", "4097"], "argument --vcpus: '4097' is not a whole number from 1 to 4096"),
        (["--vcpus", "1" + "0" * 5000], "argument --vcpus: '10000000000000000000000000000"),
        (["--name", "WWW"], "argument --name: 'WWW' is not a domain name"),
        (["--name", "Bad Name"], "(e.g. --name bad-name)"),
        (["--arch", "sparc"], "argument --arch: invalid choice: 'sparc'"),
        (["--virt-type", "xen"], "argument --virt-type: invalid choice: 'xen'"),
    ],
)
def test_bad_options_fail_cleanly_before_anything_is_read(args, words, capsys):
    code, out, err = run(capsys, "convert", "/nonexistent.cfg", *args)
    assert (code, out) == (2, "")
    assert words in err
    assert "/nonexistent.cfg" not in err


def test_an_upper_case_name_is_refused_with_the_right_fix(capsys):
    code, _, err = run(capsys, "convert", str(GOOD), "--name", "WWW")
    assert code == 2
    assert "(e.g. --name www)" in err
    assert "(give --name)" not in err


def test_a_config_name_libvirt_cannot_take_asks_for_name(tmp_path, capsys):
    cfg = tmp_path / "upper.cfg"
    cfg.write_text("name = 'Web_01'\ndisk = [ 'phy:/dev/vg0/w,xvda1,w' ]\n")
    code, _, err = run(capsys, "convert", str(cfg))
    assert code == 2
    assert f"{cfg}: line 1: key 'name': 'Web_01' is not a libvirt domain name" in err
    assert err.rstrip().endswith("(give --name web-01)")
    assert run(capsys, "convert", str(cfg), "--name", "web-01")[0] == 0


def test_memory_below_what_a_guest_boots_with_names_the_line(tmp_path, capsys):
    cfg = tmp_path / "tiny.cfg"
    cfg.write_text("name = 'tiny'\nmemory = 8\ndisk = [ 'phy:/dev/vg0/t,xvda1,w' ]\n")
    code, out, err = run(capsys, "convert", str(cfg))
    assert (code, out) == (2, "")
    assert f"{cfg}: line 2: key 'memory': 8 MiB is outside 16 MiB" in err
    assert run(capsys, "convert", str(cfg), "--memory", "256M")[0] == 0


# --------------------------------------------------------------------------- -o FILE


def test_output_into_a_missing_directory_is_one_clean_error():
    result = convert(str(GOOD), "-o", "/missing/dir/x.xml")
    assert result.returncode == 2
    assert result.stderr == (
        "xen2kvm: error: /missing/dir/x.xml: cannot write: the directory /missing/dir does "
        "not exist (create it first)\n"
    )
    assert result.stdout == ""


def test_output_onto_a_directory_is_refused(tmp_path, capsys):
    code, _, err = run(capsys, "convert", str(GOOD), "-o", str(tmp_path))
    assert code == 2
    assert f"{tmp_path}: is a directory" in err
    assert list(tmp_path.iterdir()) == []


def test_output_onto_the_config_itself_is_refused(tmp_path, capsys):
    cfg = tmp_path / "web.cfg"
    cfg.write_bytes(GOOD.read_bytes())
    code, _, err = run(capsys, "convert", str(cfg), "-o", str(cfg))
    assert code == 2
    assert "is the Xen config itself" in err
    assert cfg.read_bytes() == GOOD.read_bytes()


def test_output_is_replaced_whole_with_the_usual_mode(tmp_path, capsys):
    out = tmp_path / "domain.xml"
    out.write_text("old")
    assert run(capsys, "convert", str(GOOD), "-o", str(out))[0] == 0
    assert out.read_text().startswith("<domain")
    assert [p.name for p in tmp_path.iterdir()] == ["domain.xml"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


def test_an_unwritable_directory_leaves_nothing(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("root writes anywhere; the error path is the same as a missing dir")
        code, _, err = run(capsys, "convert", str(GOOD), "-o", str(ro / "x.xml"))
        assert code == 2
        assert "cannot write: Permission denied" in err
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


# --------------------------------------------------------------------------- escaping


def test_the_template_is_autoescaped():
    env = render.environment()
    assert env.autoescape("domain.xml.j2") is True


def test_a_config_path_with_markup_is_escaped_and_valid(tmp_path, capsys):
    cfg = tmp_path / "we'b\"<evil>&amp;.cfg"
    cfg.write_bytes(GOOD.read_bytes())
    out = tmp_path / "out.xml"
    assert run(capsys, "convert", str(cfg), "-o", str(out))[0] == 0
    root = ET.parse(out).getroot()
    assert root.find(".//evil") is None
    assert root.findtext(".//{urn:xen2kvm:migration:1}xen-config") == str(cfg)
    assert validate(out).returncode == 0


def test_a_config_path_xml_cannot_carry_is_refused(tmp_path, capsys):
    cfg = tmp_path / "a\x01b.cfg"
    cfg.write_bytes(GOOD.read_bytes())
    code, out, err = run(capsys, "convert", str(cfg))
    assert (code, out) == (2, "")
    assert "which XML cannot carry" in err


def test_a_closed_pipe_is_not_a_traceback():
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte, as with `| head` on big output
    try:
        result = subprocess.run(
            [str(Path(sys.executable).parent / "xen2kvm"), "convert", str(GOOD)],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert result.returncode == 1
    assert result.stderr == ""
