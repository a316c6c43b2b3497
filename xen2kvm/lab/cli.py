"""``xen2kvm lab up|down|reboot DOM0|status|ssh HOST [CMD...]|exec -- CMD...``.

Everything runs as root (namespaces, loop devices, mounts). ``exec`` and ``ssh`` run
inside the lab network's namespace ``<prefix>-net``, the only place lab addresses exist.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .config import LabConfig


def _require_root() -> None:
    if os.geteuid() != 0:
        sys.exit(
            "xen2kvm lab: must be run as root (it makes network namespaces, loop devices "
            "and mounts); try: sudo xen2kvm lab ..."
        )


def cmd_up(args: argparse.Namespace) -> int:
    from . import orchestrate

    _require_root()
    orchestrate.up(LabConfig.from_env(), kvm_side=not args.no_kvm)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from . import orchestrate

    _require_root()
    orchestrate.down(LabConfig.from_env())
    return 0


def cmd_reboot(args: argparse.Namespace) -> int:
    from . import orchestrate

    _require_root()
    try:
        orchestrate.reboot(LabConfig.from_env(), args.dom0)
    except RuntimeError as exc:
        sys.exit(f"xen2kvm lab reboot {args.dom0}: {exc}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from . import orchestrate

    _require_root()
    cfg = LabConfig.from_env()
    print("\n".join(status_lines(orchestrate.status(cfg), cfg.netns)))
    return 0


def _running(pid: object) -> str:
    return f"running, pid {pid}" if pid else "not running"


def status_lines(st: dict[str, Any], netns: str) -> list[str]:
    """``lab status``: the lab's services, then every host in one table."""
    kvm = st["kvm"]
    lines = [f"lab {st['prefix']} in {st['root']}"]
    lines.append(f"  {'network':<9} {netns}: {'up' if st['network'] else 'down'}")
    lines.append(f"  {'apt repo':<9} {_running(st['apt_repo'])}")
    lines.append(f"  {'xen ctl':<9} {_running(st['xen_controller'])}")
    if isinstance(kvm, dict) and "outer_libvirt" in kvm:
        libvirt = kvm["outer_libvirt"]
        domains = ", ".join(libvirt.get("domains", ())) or "none"
        lines.append(
            f"  {'libvirtd':<9} {_running(libvirt.get('libvirtd_pid'))} "
            f"({libvirt.get('uri')}; domains: {domains})"
        )
    rows = [
        (name, h["kind"], h["address"], _running(h["pid"] if h["running"] else None), _domid(h))
        for name, h in st["hosts"].items()
    ]
    if isinstance(kvm, dict):
        for name, h in kvm.items():
            if name != "outer_libvirt" and isinstance(h, dict):
                rows.append((name, "kvm", h["address"], _running(h.get("qemu_pid")), _vm(h)))
    lines.append(f"  {'HOST':<9} {'KIND':<5} {'ADDRESS':<15} STATE")
    lines += [
        f"  {n:<9} {kind:<5} {addr:<15} {state}{extra}" for n, kind, addr, state, extra in rows
    ]
    if not isinstance(kvm, dict):
        lines.append(f"  kvm side: {kvm}")
    return lines


def _domid(host: dict[str, Any]) -> str:
    return f", domid {host['domid']}" if "domid" in host else ""


def _vm(host: dict[str, Any]) -> str:
    """The KVM host is a VM: say whether it answers SSH and whether its image is built."""
    notes = []
    if "ssh" in host:
        notes.append("ssh " + ("answers" if host["ssh"] else "does not answer"))
    if not host.get("image_built", True):
        notes.append("image not built")
    return "".join(f", {note}" for note in notes)


def _lab_env(cfg: LabConfig) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
    return {
        **os.environ,
        "PATH": f"{venv_bin}:{path}",
        "XEN2KVM_LAB_DIR": str(cfg.root),
        "XEN2KVM_LAB_PREFIX": cfg.prefix,
    }


def cmd_exec(args: argparse.Namespace) -> int:
    from .util import in_netns, netns_exists

    _require_root()
    cfg = LabConfig.from_env()
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        sys.exit("usage: xen2kvm lab exec -- COMMAND [ARGS...]")
    if not netns_exists(cfg.netns):
        sys.exit(f"xen2kvm lab: {cfg.netns} does not exist: run `xen2kvm lab up` first")
    return subprocess.call(in_netns(cfg.netns, cmd), env=_lab_env(cfg))


def cmd_ssh(args: argparse.Namespace) -> int:
    from . import fleet, orchestrate

    _require_root()
    cfg = LabConfig.from_env()
    try:
        host = fleet.load().host(args.host)
    except KeyError as exc:
        sys.exit(f"xen2kvm lab ssh: {exc.args[0]}")
    cmd = orchestrate.ssh_command(cfg, host.address, *args.cmd)
    if sys.stdin.isatty() and not args.cmd:
        cmd.insert(cmd.index(f"root@{host.address}"), "-t")
    return subprocess.call(cmd, env=_lab_env(cfg))


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    lab = sub.add_parser("lab", help="the built-in Xen-to-KVM lab fleet (run as root)")
    labsub = lab.add_subparsers(dest="lab_command", required=True)
    up = labsub.add_parser("up", help="build (first time) and start the lab")
    up.add_argument("--no-kvm", action="store_true", help="only the Xen side (dom0 and guests)")
    up.set_defaults(func=cmd_up)
    labsub.add_parser("down", help="stop everything the lab started").set_defaults(func=cmd_down)
    reboot = labsub.add_parser(
        "reboot", help="reboot a dom0 as Debian does (its domains shut down, autostarted)"
    )
    reboot.add_argument("dom0")
    reboot.set_defaults(func=cmd_reboot)
    labsub.add_parser("status", help="what runs").set_defaults(func=cmd_status)
    ssh = labsub.add_parser("ssh", help="ssh to a lab host by name (from lab.yml)")
    ssh.add_argument("host")
    ssh.add_argument("cmd", nargs=argparse.REMAINDER)
    ssh.set_defaults(func=cmd_ssh)
    ex = labsub.add_parser("exec", help="run a command inside the lab network namespace")
    ex.add_argument("cmd", nargs=argparse.REMAINDER)
    ex.set_defaults(func=cmd_exec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="xen2kvm")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
