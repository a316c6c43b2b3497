"""``xen2kvm lab up|down|status|ssh HOST [CMD...]|exec -- CMD...``.

Everything runs as root (namespaces, loop devices, mounts). ``exec`` and ``ssh`` run
inside the lab network's namespace ``<prefix>-net``, the only place lab addresses exist.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

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


def cmd_status(args: argparse.Namespace) -> int:
    from . import orchestrate

    _require_root()
    cfg = LabConfig.from_env()
    st = orchestrate.status(cfg)
    print(f"lab {st['prefix']} in {st['root']}")
    print(f"  network   {cfg.netns}: {'up' if st['network'] else 'down'}")
    for name, key in (("apt repo", "apt_repo"), ("xen ctl", "xen_controller")):
        pid = st[key]
        print(f"  {name:<9} {'running, pid ' + str(pid) if pid else 'not running'}")
    for name, h in st["hosts"].items():
        state = f"running, pid {h['pid']}" if h["running"] else "not running"
        domid = f", domid {h['domid']}" if "domid" in h else ""
        print(f"  {name:<9} {h['kind']:<5} {h['address']:<15} {state}{domid}")
    print(f"  kvm side: {st['kvm']}")
    return 0


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
