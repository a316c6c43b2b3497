"""LAB-ONLY boot glue: the lab KVM host's libvirt is a remote libvirtd on the outer machine.

Guests cannot boot nested inside the emulated KVM host (kvm1) in useful time, so kvm1's
``/etc/libvirt/libvirt.conf`` points virsh at ``qemu+tcp://198.51.100.1/system``: a real
libvirtd, run here by hand inside the lab network namespace and its own private mount
namespace (own /etc/libvirt, /var/lib/libvirt, /run and /dev; the host's are never
written). The migration tool's domain XML stays as in production: ``<disk type='block'>``
with ``<source dev='/dev/vg0/<guest>'/>`` (kvm1's LV path) and the bridge ``br0``.

A libvirt qemu hook makes that path real on ``prepare begin``: it asks kvm1 over SSH where
the LV lives (``pvs``/``vgs``/``lvs``), attaches a loop device over kvm1's PV disk image
at the LV's byte range (offset = pe_start + first extent x extent size) and creates the
block node ``/dev/<vg>/<lv>`` in the private /dev. ``release end`` detaches it again.
The loop device takes none of qemu's image locks, so kvm1 keeps running meanwhile; LV
ranges do not overlap, and kvm1 has flushed (the hook runs ``sync`` and
``blockdev --flushbufs`` there first) so the loop reads what kvm1 wrote.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shlex
import signal
import stat
import string
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from xen2kvm.errors import Xen2KvmError
from xen2kvm.lab.config import LAB_GATEWAY, LabConfig
from xen2kvm.lab.util import in_netns, kill_pid, pid_alive, read_pid, run

URI = f"qemu+tcp://{LAB_GATEWAY}/system"
LOOP_MAJOR = 7
LOOP_CTL_GET_FREE = 0x4C82
LV_PATH = re.compile(r"^/dev/([A-Za-z0-9+_.][A-Za-z0-9+_.-]*)/([A-Za-z0-9+_.][A-Za-z0-9+_.-]*)$")


class LvRangeError(Xen2KvmError):
    """An LV that cannot be booted from the outer machine as one byte range."""


@dataclass(frozen=True)
class LvRange:
    vg: str
    lv: str
    pv: str
    offset: int
    size: int


def _report(data: dict[str, object], key: str) -> list[dict[str, str]]:
    rows: list[dict[str, str]] = []
    for part in data.get("report", []):  # type: ignore[union-attr]
        rows += part.get(key, [])
    return rows


def lv_range(pvs: dict[str, object], vgs: dict[str, object], lvs: dict[str, object],
             vg: str, lv: str) -> LvRange:  # fmt: skip
    """Where ``vg/lv`` lives on its PV, from ``--reportformat json --units b --nosuffix``.

    + pvs: ``pvs -o pv_name,vg_name,pe_start``
    + vgs: ``vgs -o vg_name,vg_extent_size``
    + lvs: ``lvs -o vg_name,lv_name,seg_pe_ranges,seg_count`` (one row per segment)
    """
    segs = [r for r in _report(lvs, "lv") if r["vg_name"] == vg and r["lv_name"] == lv]
    if not segs:
        raise LvRangeError(f"kvm1: no LV {vg}/{lv}: create it first (lvcreate -n {lv} {vg})")
    ranges = segs[0]["seg_pe_ranges"].split()
    if len(segs) != 1 or int(segs[0]["seg_count"]) != 1 or len(ranges) != 1:
        where = " ".join(r["seg_pe_ranges"] for r in segs)
        raise LvRangeError(
            f"kvm1: LV {vg}/{lv} has {len(segs)} segments ({where}): the lab boots only"
            " linear single-segment LVs; recreate it in one piece (lvcreate -l N, no stripes)"
        )
    pv, _, extents = ranges[0].rpartition(":")
    first, _, last = extents.partition("-")
    extent = next(int(r["vg_extent_size"]) for r in _report(vgs, "vg") if r["vg_name"] == vg)
    pe_start = next(int(r["pe_start"]) for r in _report(pvs, "pv") if r["pv_name"] == pv)
    count = int(last) - int(first) + 1
    return LvRange(vg, lv, pv, pe_start + int(first) * extent, count * extent)


def parse_json_stream(text: str) -> list[dict[str, object]]:
    """Several JSON documents printed one after the other (one SSH call, three reports)."""
    decoder = json.JSONDecoder()
    docs, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return docs
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)


def block_disk_paths(domain_xml: str) -> list[tuple[str, str]]:
    """(vg, lv) of every ``<disk type='block'>`` whose source is ``/dev/<vg>/<lv>``."""
    found = []
    root = ET.fromstring(domain_xml)  # noqa: S314 - libvirtd's own XML, passed to its hook
    for disk in root.iterfind("./devices/disk[@type='block']"):
        source = disk.find("source")
        match = LV_PATH.match(source.get("dev", "") if source is not None else "")
        if match and match.group(1) not in ("mapper", "disk", "loop"):
            found.append((match.group(1), match.group(2)))
    return found


def ssh_argv(cfg: LabConfig, address: str, remote: str, *, netns: bool = True,
             known_hosts: Path | None = None) -> list[str]:  # fmt: skip
    """ssh to a lab host with the lab key; strict host key checking stays on."""
    known = known_hosts or cfg.known_hosts
    argv = ["ssh", "-i", str(cfg.ssh_key), "-o", f"UserKnownHostsFile={known}",
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            "-o", "LogLevel=ERROR", f"root@{address}", remote]  # fmt: skip
    return in_netns(cfg.netns, argv) if netns else argv


def virsh_argv(cfg: LabConfig, *args: str) -> list[str]:
    """virsh against the outer libvirtd, from inside the lab namespace (as kvm1 reaches it)."""
    return in_netns(cfg.netns, ["virsh", "-q", "-c", URI, *args])


# -- the daemon ------------------------------------------------------------------------------


def base(cfg: LabConfig) -> Path:
    return cfg.run / "outer-libvirt"


def pidfile(cfg: LabConfig) -> Path:
    return cfg.pids / "outer-libvirtd.pid"


def _file(name: str) -> str:
    return resources.files("xen2kvm.lab").joinpath("files", "kvm", name).read_text()


def start(cfg: LabConfig, kvm_address: str, pv_images: dict[str, Path]) -> int:
    """Start the outer libvirtd (idempotent); ``pv_images`` maps kvm1's PV names to files."""
    b = base(cfg)
    for sub in ("etc/hooks", "lib", "cache", "log", "run"):
        (b / sub).mkdir(parents=True, exist_ok=True)
    hook_cfg = {"kvm_address": kvm_address, "pv_images": {k: str(v) for k, v in pv_images.items()}}
    (b / "hook.json").write_text(json.dumps(hook_cfg, indent=1))
    pid = read_pid(pidfile(cfg))
    if pid is not None:
        return pid
    (b / "etc/libvirtd.conf").write_text(_file("outer-libvirtd.conf"))
    (b / "etc/qemu.conf").write_text(_file("outer-qemu.conf"))
    hook = b / "etc/hooks/qemu"
    hook.write_text(
        string.Template(_file("outer-hook-qemu")).substitute(
            lab_dir=shlex.quote(str(cfg.root)),
            lab_prefix=shlex.quote(cfg.prefix),
            pythonpath=shlex.quote(str(Path(__file__).resolve().parents[2])),
            python=shlex.quote(sys.executable),
        )
    )
    hook.chmod(0o755)
    script = b / "outer-libvirtd.sh"
    script.write_text(_file("outer-libvirtd.sh"))
    cfg.pids.mkdir(parents=True, exist_ok=True)
    argv = in_netns(cfg.netns, ["unshare", "--mount", "--propagation", "private",
                                "sh", str(script), str(b)])  # fmt: skip
    with (b / "libvirtd.stderr").open("a") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    # ip netns exec, unshare and sh all exec: the pid is libvirtd's.
    pidfile(cfg).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 30
    while run(virsh_argv(cfg, "uri"), check=False, capture=True).returncode != 0:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"outer libvirtd did not come up: see {b}/libvirtd.stderr")
        time.sleep(0.3)
    # A KVM host's libvirtd has run for a while: its capabilities are built. A fresh one
    # builds them at the first call that needs them (the first dominfo of a defined
    # domain: 2.3 s more, measured here), which would fall in the first guest's window.
    run(virsh_argv(cfg, "capabilities"), check=False, capture=True)
    return proc.pid


def stop(cfg: LabConfig) -> None:
    """Destroy the outer domains (the hook detaches their loops), stop libvirtd, clean up."""
    b = base(cfg)
    pid = read_pid(pidfile(cfg))
    if pid is not None:
        names = run(virsh_argv(cfg, "list", "--name"), check=False, capture=True).stdout
        for name in names.split():
            run(virsh_argv(cfg, "destroy", name), check=False, capture=True)
        kill_pid(pidfile(cfg), signal.SIGTERM, wait=15)
    pidfile(cfg).unlink(missing_ok=True)
    # Fallback: qemu processes of ours that outlived libvirtd (pidfiles in our private /run).
    for qpid in sorted((b / "run/libvirt/qemu").glob("*.pid")):
        kill_pid(qpid, signal.SIGKILL)
    for image in _hook_config(cfg).get("pv_images", {}).values():
        detach_loops(Path(image))


def detach_loops(image: Path) -> None:
    """Detach every loop device over ``image`` (ours only: the image is the lab's)."""
    out = run(["losetup", "-j", str(image), "-O", "NAME", "-n"], check=False, capture=True)
    for dev in out.stdout.split():
        run(["losetup", "-d", dev], check=False, capture=True)


def status(cfg: LabConfig) -> dict[str, object]:
    pid = read_pid(pidfile(cfg))
    state: dict[str, object] = {"libvirtd_pid": pid, "uri": URI}
    if pid is not None and pid_alive(pid):
        out = run(virsh_argv(cfg, "list", "--all", "--name"), check=False, capture=True)
        state["domains"] = out.stdout.split()
    state["loops"] = _load_loops(cfg)
    return state


# -- the hook (runs inside libvirtd's namespaces) --------------------------------------------


def _hook_config(cfg: LabConfig) -> dict[str, object]:
    try:
        return json.loads((base(cfg) / "hook.json").read_text())
    except FileNotFoundError:
        return {}


def _load_loops(cfg: LabConfig) -> dict[str, list[str]]:
    try:
        return json.loads((base(cfg) / "loops.json").read_text())
    except FileNotFoundError:
        return {}


@contextlib.contextmanager
def _locked_loops(cfg: LabConfig) -> Iterator[dict[str, list[str]]]:
    with (base(cfg) / "loops.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        loops = _load_loops(cfg)
        try:
            yield loops
        finally:
            (base(cfg) / "loops.json").write_text(json.dumps(loops, indent=1))


def _kvm_reports(cfg: LabConfig, address: str, lvs: list[tuple[str, str]]) -> list[dict]:
    flush = " ".join(
        f"[ ! -b {shlex.quote(f'/dev/{vg}/{lv}')} ] || blockdev --flushbufs "
        f"{shlex.quote(f'/dev/{vg}/{lv}')};"
        for vg, lv in lvs
    )
    opts = "--units b --nosuffix --reportformat json"
    remote = (
        f"sync; {flush} pvs {opts} -o pv_name,vg_name,pe_start && "
        f"vgs {opts} -o vg_name,vg_extent_size && "
        f"lvs {opts} -o vg_name,lv_name,seg_pe_ranges,seg_count"
    )
    out = run(ssh_argv(cfg, address, remote, netns=False), capture=True, timeout=120).stdout
    return parse_json_stream(out)


def _attach(node: Path, image: str, rng: LvRange) -> None:
    """A free loop device over ``image`` at ``rng``, reachable as the block node ``node``."""
    node.parent.mkdir(exist_ok=True)
    for _ in range(5):
        with contextlib.suppress(FileNotFoundError):
            run(["losetup", "-d", str(node)], check=False, capture=True)
            node.unlink()
        ctl = os.open("/dev/loop-control", os.O_RDWR)
        try:
            index = fcntl.ioctl(ctl, LOOP_CTL_GET_FREE)
        finally:
            os.close(ctl)
        os.mknod(node, 0o660 | stat.S_IFBLK, os.makedev(LOOP_MAJOR, index))
        proc = run(["losetup", "--offset", str(rng.offset), "--sizelimit", str(rng.size),
                    str(node), image], check=False, capture=True)  # fmt: skip
        if proc.returncode == 0:
            return
        node.unlink()  # somebody else took that loop device: try the next free one
    raise LvRangeError(f"could not attach a loop device for {node}: {proc.stderr.strip()}")


def _detach(node: Path) -> None:
    run(["losetup", "-d", str(node)], check=False, capture=True)
    node.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        node.parent.rmdir()


def hook_prepare(cfg: LabConfig, domain: str, domain_xml: str) -> None:
    lvs = block_disk_paths(domain_xml)
    if not lvs:
        return
    conf = _hook_config(cfg)
    address = str(conf["kvm_address"])
    images: dict[str, str] = conf["pv_images"]  # type: ignore[assignment]
    pvs_r, vgs_r, lvs_r = _kvm_reports(cfg, address, lvs)
    with _locked_loops(cfg) as loops:
        made = loops.setdefault(domain, [])
        for vg, lv in lvs:
            rng = lv_range(pvs_r, vgs_r, lvs_r, vg, lv)
            if rng.pv not in images:
                raise LvRangeError(f"kvm1: LV {vg}/{lv} is on {rng.pv}, not on the lab's PV disk")
            node = Path("/dev", vg, lv)
            _attach(node, images[rng.pv], rng)
            made.append(str(node))


def hook_release(cfg: LabConfig, domain: str) -> None:
    with _locked_loops(cfg) as loops:
        nodes = loops.pop(domain, [])
        for node in nodes:
            _detach(Path(node))
    if nodes:
        # kvm1 may hold stale cached blocks of what the guest wrote: drop them.
        flush = "; ".join(f"blockdev --flushbufs {shlex.quote(n)}" for n in nodes)
        address = str(_hook_config(cfg).get("kvm_address"))
        run(ssh_argv(cfg, address, flush, netns=False), check=False, capture=True, timeout=60)


def main(argv: list[str]) -> int:
    """``hook DOMAIN OPERATION SUBOPERATION EXTRA`` as libvirt calls hooks/qemu."""
    if len(argv) < 4 or argv[0] != "hook":
        print("usage: python -m xen2kvm.lab.outer_libvirt hook DOMAIN OP SUBOP", file=sys.stderr)
        return 2
    cfg = LabConfig.from_env()
    domain, op, subop = argv[1], argv[2], argv[3]
    try:
        if (op, subop) == ("prepare", "begin"):
            hook_prepare(cfg, domain, sys.stdin.read())
        elif (op, subop) == ("release", "end"):
            hook_release(cfg, domain)
    except (Xen2KvmError, RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"xen2kvm lab hook ({domain} {op} {subop}): {exc}", file=sys.stderr)
        if (op, subop) == ("prepare", "begin"):
            hook_release(cfg, domain)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
