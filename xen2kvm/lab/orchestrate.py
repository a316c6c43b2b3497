"""Bring the whole lab up, down, reboot one dom0, or say what runs.

Order up: SSH key, cached trees and images (built on first run), known_hosts and
ssh_config, the lab network, the apt repo, the Xen controller, the dom0 (with the guests'
LVs on loop devices), the guests (created through the controller, as ``xl create`` would),
the KVM side (``xen2kvm.lab.kvmhost``, when present), then wait for SSH on every host.
Down is the reverse, by PID and by recorded loop device, and idempotent. A reboot takes
one dom0 through what a real dom0's shutdown and boot do (see ``reboot``).
"""

from __future__ import annotations

import hashlib
import importlib
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

from . import containers, dom0, fleet, hypervisor, images, modules, net, repo, xendomains
from .config import LabConfig
from .util import in_netns, netns_exists

TOOLS = {
    "debootstrap": "debootstrap",
    "dpkg-scanpackages": "dpkg-dev",
    "mkfs.ext4": "e2fsprogs",
    "losetup": "mount",
    "unshare": "util-linux",
    "ssh": "openssh-client",
}


class Progress:
    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def __call__(self, msg: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {msg}", flush=True)


def _kvmhost() -> ModuleType | None:
    try:
        return importlib.import_module("xen2kvm.lab.kvmhost")
    except ModuleNotFoundError as exc:
        if exc.name != "xen2kvm.lab.kvmhost":
            raise
        return None


def host_mac(name: str) -> str:
    """A stable, locally administered MAC for a container host that is not a domU."""
    digest = hashlib.sha256(name.encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


def ssh_command(
    cfg: LabConfig, address: str, *cmd: str, timeout: int = 5, control_dir: Path | None = None
) -> list[str]:
    """ssh to a lab host from inside ``<prefix>-net``, strict host key checking on.

    With ``control_dir``, connections to a host are shared (OpenSSH's ControlMaster, its
    socket in that directory): a login to kvm1 or a migrated guest under TCG costs seconds
    (key exchange, PAM's session), a command over the open connection a fraction of one.
    A master whose host went away without closing the connection (a VM killed) notices
    within seconds (ServerAlive) and exits; the command it carried fails with 255.
    """
    shared: list[str] = []
    if control_dir is not None:
        shared = [
            "-o", "ControlMaster=auto", "-o", f"ControlPath={control_dir}/%C",
            "-o", "ControlPersist=120", "-o", "ServerAliveInterval=3",
            "-o", "ServerAliveCountMax=2",
        ]  # fmt: skip
    return in_netns(
        cfg.netns,
        [
            "ssh",
            *shared,
            "-i",
            str(cfg.ssh_key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={cfg.known_hosts}",
            "-o",
            "GlobalKnownHostsFile=/dev/null",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={timeout}",
            "-o",
            "LogLevel=ERROR",
            f"root@{address}",
            *cmd,
        ],
    )


def write_ssh_config(cfg: LabConfig, lab: fleet.Fleet) -> None:
    """``cfg.root/ssh_config``: every lab host by name, for ssh -F and testinfra."""
    blocks = []
    for host in lab.hosts:
        blocks.append(
            f"Host {' '.join((host.name, *host.aliases, host.address))}\n"
            f"  HostName {host.address}\n  User root\n"
            f"  IdentityFile {cfg.ssh_key}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {cfg.known_hosts}\n  GlobalKnownHostsFile /dev/null\n"
            "  StrictHostKeyChecking yes\n  BatchMode yes\n  LogLevel ERROR\n"
        )
    (cfg.root / "ssh_config").write_text("\n".join(blocks))


def _check_tools() -> None:
    missing = sorted({pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None})
    if missing:
        raise RuntimeError(
            f"lab tools missing: run `apt-get install -y {' '.join(missing)}` and retry"
        )


def build(cfg: LabConfig, lab: fleet.Fleet, say: Progress) -> None:
    images.ensure_ssh_key(cfg)
    say("trees: debootstrap (cached under " + str(cfg.cache) + ")")
    built = images.build_trees(cfg)
    say(f"trees: {'built ' + ', '.join(built) if built else 'cached'}")
    built = images.build_guests(cfg, lab)
    say(f"guest images: {'built ' + ', '.join(built) if built else 'cached'}")
    built = modules.build(cfg)
    say(f"modules packages (lab-built): {'built ' + ', '.join(built) if built else 'cached'}")
    images.write_known_hosts(cfg, {h.name: h.address for h in lab.hosts if h.kind != "kvm"})
    write_ssh_config(cfg, lab)


def start_xen_hosts(cfg: LabConfig, lab: fleet.Fleet, say: Progress) -> None:
    for host in lab.xen_hosts:
        if containers.running(cfg, host.name) is None:
            ns = net.host_net_up(
                cfg, host.name, host.address, host_mac(host.name), (), host.migration_address
            )
            containers.start(cfg, dom0.spec(cfg, lab, host, hypervisor.socket_dir(cfg)), ns)
        on = f", {host.migration_address} on br1" if host.migration_address else ""
        say(f"dom0 {host.name}: running ({host.address}{on})")


def start_guests(cfg: LabConfig, lab: fleet.Fleet, say: Progress) -> list[fleet.Host]:
    """What each dom0's ``xendomains`` does at boot: ``xl create`` for each domain linked in
    its ``/etc/xen/auto`` that does not run. A fresh dom0 links all its guests; one whose
    guest was migrated (its link removed) leaves it off, so a ``lab up`` over a running
    lab never brings a moved guest back beside its KVM copy. The guests started or found
    running."""
    started: list[fleet.Host] = []
    problems: list[str] = []
    for host in lab.xen_hosts:
        root = containers.seen_inside(cfg, host.name, dom0.root(cfg, host.name))
        if root is None:
            raise RuntimeError(f"{host.name} stopped right after its start: see its console.log")
        names, trouble = xendomains.start(cfg, host.name, root, say)
        problems += [f"{host.name}: {line}" for line in trouble]
        started += [lab.host(name) for name in names]
    up = {host.name for host in started}
    for guest in lab.guests:
        if guest.name in up:
            say(f"guest {guest.name}: running ({guest.address}, {guest.arch}, {guest.init})")
        else:
            say(f"guest {guest.name}: left off (not in its dom0's /etc/xen/auto)")
    if problems:
        raise RuntimeError("xendomains failed:\n  " + "\n  ".join(problems))
    return started


def wait_ssh(cfg: LabConfig, hosts: list[fleet.Host], say: Progress, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    for host in hosts:
        while True:
            proc = subprocess.run(
                ssh_command(cfg, host.address, "true", timeout=3), capture_output=True, check=False
            )
            if proc.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{host.name} ({host.address}) does not answer SSH: "
                    f"{proc.stderr.decode().strip()}"
                )
            time.sleep(0.5)
    say("ssh: " + ", ".join(h.name for h in hosts) + " answer")


def up(cfg: LabConfig, kvm_side: bool = True) -> None:
    say = Progress()
    _check_tools()
    lab = fleet.load()
    if stale(cfg):
        say(f"an earlier lab's files in {cfg.run}, its processes gone: cleared as `lab down` does")
        clear(cfg, lab, say)
    for path in (cfg.root, cfg.cache, cfg.run, cfg.pids):
        path.mkdir(parents=True, exist_ok=True)
    kvm = _kvmhost() if kvm_side else None
    images.ensure_ssh_key(cfg)  # before the builds: kvm1's image takes it in too
    with ThreadPoolExecutor(max_workers=1) as pool:
        # kvm1's image (a debootstrap of its own) is built beside the Xen side's trees: on
        # a fresh machine each takes minutes, mostly waiting on the mirror and the disk.
        image = pool.submit(kvm.build_image, cfg) if kvm is not None else None
        build(cfg, lab, say)
        net.lab_net_up(cfg)
        say(f"network: {cfg.netns} with br0 198.51.100.1/24 and br1 (the migration network)")
        repo.serve(cfg)
        say(f"apt repo: {repo.repo_url('[<suite>-]<arch>')} (served from {cfg.netns})")
        hypervisor.start_controller(cfg)
        say("xen controller: running")
        start_xen_hosts(cfg, lab, say)
        guests = start_guests(cfg, lab, say)
        if image is not None:
            image.result()
    reachable = [*lab.xen_hosts, *guests]
    if not kvm_side:
        say("kvm side: skipped (--no-kvm)")
    elif kvm is None:
        say("kvm side: xen2kvm.lab.kvmhost not there yet, skipped")
    else:
        kvm.build(cfg)
        kvm.up(cfg)
        say("kvm side: up")
    wait_ssh(cfg, reachable, say)
    say("lab up")


def stale(cfg: LabConfig) -> bool:
    """Whether an earlier lab left its run files but not its processes (the machine
    rebooted, or they were killed): its dom0 disks, autostart links and guest LVs then
    belong to no running lab, and starting over them can link a guest on two dom0s (a
    rehomed one). A lab whose xen controller runs is live, not stale."""
    if hypervisor.controller_pid(cfg) is not None or not cfg.run.is_dir():
        return False
    return any(cfg.run.iterdir())


def down(cfg: LabConfig) -> None:
    say = Progress()
    clear(cfg, fleet.load(), say)
    say("lab down")


def clear(cfg: LabConfig, lab: fleet.Fleet, say: Progress) -> None:
    """Stop whatever of the lab still runs and remove its run files (``lab down``); each
    part copes with being gone already."""
    kvm = _kvmhost()
    if kvm is not None:
        kvm.down(cfg)
        say("kvm side: down")
    hypervisor.stop_controller(cfg)
    for guest in lab.guests:
        hypervisor.stop_guest(cfg, guest.name, graceful=False)
    for host in lab.xen_hosts:
        containers.stop(cfg, host.name, graceful=False)
        net.host_net_down(cfg, host.name)
    say("containers: stopped")
    repo.stop(cfg)
    for guest in lab.guests:
        dom0.detach_lvs(cfg, guest.name)
        if guest.rehome_to:
            dom0.detach_lvs(cfg, guest.name, guest.rehome_to)
    net.lab_net_down(cfg)
    shutil.rmtree(cfg.run, ignore_errors=True)


def reboot(cfg: LabConfig, name: str) -> None:
    """Reboot the dom0 ``name`` as a Debian Xen dom0 reboots.

    xendomains shuts its domains down (through the controller, as ``xl shutdown`` does),
    the container stops (processes, /run, /dev, every mount made in it are gone) and boots
    again from its disk as it is (the overlay's upper dir: /etc, /root, /var, the host keys;
    /tmp emptied as Debian's boot does), then xendomains creates the domains linked in its
    /etc/xen/auto. Raises RuntimeError, naming what failed, unless the dom0 and every
    domain it started answer SSH.
    """
    say = Progress()
    lab = fleet.load()
    host = next((h for h in lab.xen_hosts if h.name == name), None)
    if host is None:
        dom0s = ", ".join(h.name for h in lab.xen_hosts)
        raise RuntimeError(f"{name} is not a dom0 of the lab (its dom0s: {dom0s})")
    if containers.running(cfg, name) is None:
        raise RuntimeError(
            f"{name} is not running, so it cannot reboot: `xen2kvm lab up` starts it"
        )
    if hypervisor.controller_pid(cfg) is None:
        raise RuntimeError("the xen controller is not running: `xen2kvm lab up` starts it")
    say(f"{name}: reboot: xendomains stop")
    stopped = xendomains.stop(cfg, name, say)
    containers.stop(cfg, name, graceful=True)
    net.host_net_down(cfg, name)
    say(f"{name}: halted (its processes, /run, /dev and mounts are gone; its disk stays)")
    dom0.clean_tmp(cfg, name)
    ns = net.host_net_up(cfg, name, host.address, host_mac(name), (), host.migration_address)
    containers.start(cfg, dom0.boot_spec(cfg, lab, host, hypervisor.socket_dir(cfg)), ns)
    say(f"{name}: booted (sshd started)")
    root = containers.seen_inside(cfg, name, dom0.root(cfg, name))
    if root is None:
        raise RuntimeError(f"{name} stopped again right after its boot: see its console.log")
    started, problems = xendomains.start(cfg, name, root, say)
    wait_ssh(cfg, [host, *(lab.host(guest) for guest in started)], say)
    off = sorted(set(stopped) - set(started))
    if off:
        say(f"{name}: stay off (not in /etc/xen/auto, or failed): {', '.join(off)}")
    if problems:
        raise RuntimeError(f"{name} rebooted, but xendomains failed:\n  " + "\n  ".join(problems))
    say(f"{name}: rebooted; running on it: {', '.join(started) or 'no domain'}")


def status(cfg: LabConfig) -> dict[str, Any]:
    lab = fleet.load()
    domains: dict[str, int] = {}
    if hypervisor.controller_pid(cfg) is not None:
        try:
            answer = hypervisor.request(cfg, {"op": "list"}, timeout=5)
            domains = {d["guest"]: d["domid"] for d in answer.get("domains", [])}
        except OSError:
            pass
    hosts = {}
    for host in lab.hosts:
        if host.kind == "kvm":
            continue
        pid = containers.running(cfg, host.name)
        hosts[host.name] = {
            "kind": host.kind,
            "address": host.address,
            "running": pid is not None,
            "pid": pid,
            "netns": cfg.host_netns(host.name) if netns_exists(cfg.host_netns(host.name)) else None,
        }
        if host.name in domains:
            hosts[host.name]["domid"] = domains[host.name]
    kvm = _kvmhost()
    return {
        "prefix": cfg.prefix,
        "root": str(cfg.root),
        "network": netns_exists(cfg.netns),
        "apt_repo": repo.server_pid(cfg),
        "xen_controller": hypervisor.controller_pid(cfg),
        "hosts": hosts,
        "kvm": kvm.status(cfg) if kvm is not None else "xen2kvm.lab.kvmhost not there yet",
    }
