"""bench/warm_cold.py's pure part: what the cold copy reads (the frozen plan inputs), the
KVM host's copy script run here with the real rsync and its output read into steps, and
the cold downtime computed from the warm cutover's journal."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bench.downtime import breakdown, tagged
from bench.warm_cold import (
    DOM0_BASE,
    FILL,
    KEY_IN,
    KEY_OUT,
    Cold,
    ColdCopyFailed,
    Filesystem,
    cold_copies,
    copy_script,
    excludes,
    filesystems,
    report,
    scratch_mib,
    summary_line,
    xen_domain,
)
from operations.sync import MODULE, access_line, module_path
from tests.unit.journal_records import T, move
from tests.unit.rsync_daemon import serving
from xen2kvm import render
from xen2kvm.lab import dom0, fleet, guestfiles
from xen2kvm.planinputs import PlanInputs
from xen2kvm.units import MIB


def frozen(name: str) -> str:
    """A lab guest's plan inputs as its first presync freezes them on kvm1: its Xen config
    and fstab as the lab writes them, its LVs' sizes and what blkid reads on them."""
    guest = fleet.load().guest(name)
    devices = {disk: dom0.lv_path(name, disk.role) for disk in guest.disks}
    return PlanInputs(
        xen_config=dom0.xen_config(guest),
        fstab=guestfiles.fstab(guest),
        sizes={devices[d]: d.size_mib * MIB for d in guest.disks},
        filesystems={
            devices[d]: {
                "TYPE": "ext4" if d.mountpoint else "swap",
                "UUID": guest.fs_uuid(d),
                "LABEL": guest.fs_label(d),
            }
            for d in guest.disks
        },
    ).to_json()


def test_the_filesystems_a_cold_copy_reads_from_the_frozen_plan_inputs():
    # mail1's fstab names /var by LABEL= and /srv by UUID=; its swap is not copied
    assert filesystems(frozen("mail1"), "mail1") == [
        Filesystem("/", "/dev/xenvg/mail1-root", 1536 * MIB),
        Filesystem("/srv", "/dev/xenvg/mail1-srv", 256 * MIB),
        Filesystem("/var", "/dev/xenvg/mail1-var", 512 * MIB),
    ]
    assert [f.mountpoint for f in filesystems(frozen("web1"), "web1")] == ["/", "/var"]


def test_the_xen_domain_and_the_scratch_size():
    assert xen_domain(frozen("legacy1")) == "legacy1"
    # 1536 + 256 + 512 MiB of filesystems, and the margin
    assert scratch_mib(filesystems(frozen("mail1"), "mail1")) == 2304 + 64
    assert scratch_mib([Filesystem("/", "/dev/x", 10 * MIB + 1)]) == 11 + 64


def test_the_cold_copy_leaves_out_what_the_tools_copies_leave_out():
    root = excludes("/")
    assert {"/proc/*", "/sys/*", "/dev/*", "/run/*", "/tmp/*", "/lost+found"} <= set(root)
    assert "/etc/fstab" in root and "/boot/grub/" in root  # the tool writes those itself
    assert excludes("/var") == ["/lost+found"]


# As the KVM host prints it: one line per filesystem, date +%s.%N's times.
OUTPUT = """\
x2k-cold step=/ rc=0 start=1733000400.100000000 end=1733000688.400000000 bytes=851987456
x2k-cold step=/var rc=0 start=1733000688.600000000 end=1733000731.000000000 bytes=161480704
"""


def test_the_full_copy_read_from_the_kvm_hosts_output():
    steps = cold_copies("Warning: something rsync said\n" + OUTPUT, ["/", "/var"])
    assert [(s.name, round(s.seconds, 2), s.note) for s in steps] == [
        ("full copy /", 288.3, "812.5 MiB moved"),
        ("full copy /var", 42.4, "154.0 MiB moved"),
    ]


@pytest.mark.parametrize(
    ("output", "said"),
    [
        (OUTPUT.splitlines()[0], "no copy of /var"),
        (OUTPUT.replace("step=/var rc=0", "step=/var rc=23"), "rsync rc 23"),
    ],
    ids=["missing", "failed"],
)
def test_a_copy_missing_or_failed_is_refused(output, said):
    with pytest.raises(ColdCopyFailed, match=said):
        cold_copies(output, ["/", "/var"])


# web1's cutover: 12 s to the first copy, copies of 10.5 s and 4 s, checks of 12.5 and
# 2.8 s, 17 s of fix-ups, 70 s to SSH: 128.8 s of downtime, 14.5 s of it final copies;
# the full copy (OUTPUT) 288.3 + 42.4 s.
WARM = move(
    "web1",
    T + 100,
    shutdown=12,
    copies={"/": (10.5, 52_000_000), "/var": (4.0, 1_000_000)},
    checks={"/": 12.5, "/var": 2.8},
    fixups=17,
    boot=70,
)


def cold(setup: float | None = None) -> Cold:
    return Cold(breakdown(WARM, setup), tuple(cold_copies(OUTPUT, ["/", "/var"])))


def test_the_cold_downtime_is_the_warm_one_with_the_full_copy_in_place_of_the_final():
    found = cold()
    assert found.warm.downtime == pytest.approx(128.8)
    assert found.warm.final_rsync == pytest.approx(14.5)
    assert found.copy == pytest.approx(288.3 + 42.4)
    assert found.downtime == pytest.approx(128.8 - 14.5 + 330.7)


def test_the_cold_rows_add_up_and_say_what_is_assumed():
    found = cold(setup=5)
    rows = found.rows()
    assert sum(row.seconds for row in rows) == pytest.approx(found.downtime)
    named = {row.name: row for row in rows}
    assert (named["shutdown"].seconds, named["set-up"].seconds) == (pytest.approx(7), 5)
    assert named["integrity:/"].seconds == pytest.approx(12.5)
    assert (named["start"].seconds, named["boot"].seconds) == (0, pytest.approx(70))
    assert all("assumed" in row.note for row in rows if not row.name.startswith("full copy"))


def test_the_ratios_and_the_summary_line():
    found = cold()
    assert found.copy_ratio == pytest.approx(330.7 / 14.5)  # 22.81
    assert found.downtime_ratio == pytest.approx(445.0 / 128.8)  # 3.45
    # 851987456 + 161480704 bytes, against 52_000_000 + 1_000_000: 19.12
    assert found.byte_ratio == pytest.approx((851987456 + 161480704) / 53_000_000)
    assert summary_line("web1", found, 768, 50, 256) == (
        "bench warm_cold: guest=web1 data_mib=768 churn_mib=50 write_kib_s=256 "
        "copy_ratio=22.81 byte_ratio=19.12 downtime_ratio=3.45"
    )


def test_no_byte_ratio_when_a_copy_did_not_say_its_bytes():
    unsaid = [
        {k: v for k, v in r.items() if k != "bytes" or r["step"] != "cutover:/var"} for r in WARM
    ]
    found = Cold(breakdown(unsaid), tuple(cold_copies(OUTPUT, ["/", "/var"])))
    assert found.copy_ratio == cold().copy_ratio
    assert found.byte_ratio is None
    assert "byte_ratio=n/a" in summary_line("web1", found, 0, 50)


def test_the_report_ends_with_the_summary_line():
    lines = report(
        "web1", cold(setup=5), setup_found=True, boot=66.2, data_mib=768, churn_mib=50,
        write_kib_s=256,
    )  # fmt: skip
    assert lines[-1] == summary_line("web1", cold(setup=5), 768, 50, 256)
    said = "bytes inside the window: 966.5 MiB cold / 50.5 MiB warm = 19.12 (the bench wrote"
    assert any(line.startswith(said) for line in lines)
    assert any(
        line.endswith(
            "768 MiB of data into web1 before presync, churned 50 MiB after it, and wrote "
            "256 KiB a second from then until its stop)"
        )
        for line in lines
    )
    # the cold downtime without the checks (12.5 + 2.8 s): 445.0 - 15.3
    assert any(line.endswith("the cold downtime would be 429.7 s") for line in lines)
    by_hand = (
        "start and boot after the cold copy, by hand: 66.2 s (the warm run's: start 0.0 s "
        "and boot 70.0 s"
    )
    assert any(line.startswith(by_hand) for line in lines)
    assert "set-up not found" not in "\n".join(lines)
    assert "set-up not found" in "\n".join(report("web1", cold(), setup_found=False))


def test_the_data_written_into_the_guest_by_the_fill_script_run_here(tmp_path: Path):
    into = tmp_path / "srv" / "x2k-data"
    into.mkdir(parents=True)
    (into / "old.bin").write_bytes(b"x")  # made again: what was there goes
    also = tmp_path / "var" / "lib" / "x2k-data"
    script = ["sh", "-s", "--", "5", "2", "1", str(into), str(also)]
    ran = subprocess.run(script, input=FILL, capture_output=True, text=True, check=True)
    for where in (into, also):
        sizes = {p.name: p.stat().st_size for p in where.iterdir()}
        assert sizes == {"part-1.bin": 2 * MIB, "part-2.bin": 2 * MIB, "part-3.bin": MIB}
        assert len({(where / name).read_bytes()[:64] for name in sizes}) == 3  # not zeros
    found = tagged(ran.stdout, "x2k-data")
    assert [(f["dir"], f["files"], int(f["bytes"]) >= 5 * MIB) for f in found] == [
        (str(into), "3", True),
        (str(also), "3", True),
    ]
    assert all(int(f["free_mib"]) > 0 and f["on"].startswith("/") for f in found)


def test_the_fill_script_writes_only_what_leaves_the_room_free(tmp_path: Path):
    into = tmp_path / "x2k-data"
    free = shutil.disk_usage(tmp_path).free // MIB
    script = ["sh", "-s", "--", "1", "16", str(free + 100), str(into)]  # more than is free
    ran = subprocess.run(script, input=FILL, capture_output=True, text=True, check=True)
    assert tagged(ran.stdout, "x2k-data")[0]["files"] == "0"
    assert list(into.iterdir()) == []


# The copy script, run here: the dom0's root served as sync.access serves it
# (tests/unit/rsync_daemon.py), ``ssh`` the remote shell that runs the key's forced
# command whatever rsync asks; /var its own filesystem (a tmpfs, in a mount namespace of
# the script's own), as on the dom0 each filesystem is its own mount, where -x stops.
IN_ITS_OWN_MOUNTS = r"""
set -eu
var=$1 staged=$2
mount -t tmpfs x2k-test-var "$var"
cp -a "$staged"/. "$var"/
exec bash -s
"""


def mounts_allowed(where: Path) -> bool:
    """Whether this machine lets a test mount a tmpfs in a mount namespace of its own."""
    probe = ["unshare", "--mount", "--propagation", "private", "mount", "-t", "tmpfs", "x", where]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("rsync") or not shutil.which("unshare"),
    reason="needs root (the module chroots; a tmpfs for /var), rsync and unshare",
)
def test_the_kvm_hosts_copy_script_run_with_the_real_rsync(tmp_path: Path):
    source, into, bin_ = tmp_path / "dom0", tmp_path / "scratch", tmp_path / "bin"
    if not mounts_allowed(tmp_path):
        pytest.skip("this machine lets no test mount a tmpfs in a namespace of its own")
    (source / "web1/etc").mkdir(parents=True)
    (source / "web1/etc/hostname").write_text("web1\n")
    (source / "web1/etc/fstab").write_text("/dev/xvda2 / ext4 errors=remount-ro 0 1\n")
    (source / "web1/proc/1").mkdir(parents=True)
    (source / "web1/proc/1/status").write_text("a stopped guest's /proc holds nothing\n")
    (source / "web1/var").mkdir()  # /var's mount point
    (source / "web1/usr").mkdir()
    (source / "web1/usr/big").write_bytes(os.urandom(2 * MIB))
    staged = tmp_path / "var"  # what /var's filesystem holds, copied into its tmpfs
    (staged / "log").mkdir(parents=True)
    (staged / "log/syslog").write_bytes(os.urandom(MIB))
    (staged / "lost+found").mkdir()
    (into / "lost+found").mkdir(parents=True)  # as mkfs.ext4 left it
    bin_.mkdir()
    found = [
        Filesystem("/", "/dev/xenvg/web1-root", 0),
        Filesystem("/var", "/dev/xenvg/web1-var", 0),
    ]
    script = copy_script(found, "web1", "198.51.100.10", "/k/id_ed25519", "/k/kh", str(into))
    env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}"}
    with serving(source, tmp_path) as rsh:
        shutil.copy(rsh, bin_ / "ssh")
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", IN_ITS_OWN_MOUNTS,
             "x2k-test", str(source / "web1/var"), str(staged)],
            input=script, capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr
    steps = cold_copies(result.stdout, ["/", "/var"])
    moved = [float(step.note.split()[0]) for step in steps]  # MiB, as rsync received them
    assert 2.0 <= moved[0] < 2.2 and 1.0 <= moved[1] < 1.2, result.stdout
    assert (into / "etc/hostname").read_text() == "web1\n"
    assert (into / "var/log/syslog").read_bytes() == (staged / "log/syslog").read_bytes()
    assert not (into / "etc/fstab").exists()  # the tool writes it: not copied
    assert list((into / "proc").iterdir()) == []
    assert (into / "lost+found").is_dir() and not (into / "var/lost+found").exists()


def test_the_migration_keys_line_and_module_are_let_in_and_taken_out_exactly(tmp_path: Path):
    keys, module = tmp_path / "authorized_keys", tmp_path / "run/xen2kvm/rsyncd-bench.conf"
    public = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxN0ymmF4N8ETjUeY0Y1Jr4Ck3p xen2kvm-migration"
    tools = access_line(public, "198.51.100.20", "/var/lib/xen2kvm/source")
    before = f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperator operator\n{tools}\n"
    keys.write_text(before)
    ours = access_line(public, "198.51.100.20", DOM0_BASE)
    assert f'command="rsync --server --daemon --config={module_path(DOM0_BASE)} ."' in ours
    text = render.rsyncd_conf(MODULE, DOM0_BASE)

    let_in = bash(KEY_IN, ours, str(keys), str(module), text)
    assert let_in.returncode == 0, let_in.stderr
    assert keys.read_text() == f"{before}{ours}\n"
    assert module.read_text() == text
    taken_out = bash(KEY_OUT, ours, str(keys), str(module))
    assert taken_out.returncode == 0, taken_out.stderr
    assert keys.read_text() == before  # the tool's own line for the same key is kept
    assert not module.exists()


def bash(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``bash -s -- ARGS`` with the script on stdin, as the bench runs it over ssh."""
    return subprocess.run(
        ["bash", "-s", "--", *args], input=script, capture_output=True, text=True, check=False
    )
