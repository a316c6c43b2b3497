"""The Xen fake: the lab's only stand-in, because no Xen hypervisor can run on this machine.

Everything else in the lab is real (guests' daemons, their ext4 LVs on loop devices, SSH,
the dom0's block nodes and mounts). What Xen would do -- start and stop domains -- is
done by this small controller on the outer machine, which the dom0's ``/usr/sbin/xl``
(``files/xl``) asks over a unix socket bind-mounted into the dom0 at
``/run/xen2kvm-lab/xl.sock``.

Protocol: one JSON object per connection, one JSON answer line back.

- ``{"op": "list"}`` -> ``{"ok": true, "domains": [{"name", "domid", "memory_mib",
  "vcpus", "state", "cpu_time"}]}`` (running guests only; Domain-0 is added by xl)
- ``{"op": "create", "name": N, "memory_mib": 512, "vcpus": 1, "config": PATH}`` ->
  ``{"ok": true, "domid": D}``: network up, container booted from the same LV images; N is
  the config's ``name =`` (the lab guest's Xen name), PATH the config file in the dom0,
  kept for ``xl list -l`` (real xl keeps the config a domain was created from)
- ``{"op": "shutdown", "name": N}`` / ``{"op": "destroy", "name": N}``: container stopped
  (cleanly / killed), its network namespace deleted so its addresses stop answering; the
  loop devices stay, so its LVs remain mountable (read-only) in the dom0. A shutdown is a
  request the guest may ignore, as a hung guest does: one holding the lab fault
  ``/run/x2k-lab-ignore-shutdown`` (its tmpfs, gone when it stops) keeps running and the
  answer says ``"pending": true`` (``xl shutdown -w`` then waits, as real xl does)
- ``{"op": "rename", "name": N, "new": M}``: the running domain of guest N is called M
  from now on (``xl rename``), until it stops; ``list`` names it M, its ``guest`` N
- errors: ``{"ok": false, "error": "..."}``

A guest only runs while its domain exists; ``create`` of a running guest fails as in xl,
and so does ``create`` while one of its LVs is mounted in the dom0 (no filesystem is ever
mounted read-write in two places).

Two dom0s: each request names the dom0 that asks (``"dom0"``, what xl reads from its host
name; none means the guest's own dom0). ``list`` shows that dom0's domains only. A guest
rehomed to another dom0 (``rehome_to`` in lab.yml) can be created there, from the LVs the
lab gave it on that dom0; ``create`` refuses while it runs on any dom0 (never on two: the
split-brain guard real Xen does not have across hosts, kept here so the lab cannot hide a
tool's mistake).
"""

from __future__ import annotations

import json
import os
import socket
import socketserver
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import containers, dom0, fleet, net
from .config import LabConfig
from .util import read_pid

SOCKET_NAME = "xl.sock"


def socket_dir(cfg: LabConfig) -> Path:
    return cfg.run / "xen"


def _state_file(cfg: LabConfig) -> Path:
    return socket_dir(cfg) / "domains.json"


def _pidfile(cfg: LabConfig) -> Path:
    return cfg.pids / "xen-controller.pid"


class Controller:
    def __init__(self, cfg: LabConfig) -> None:
        self.cfg = cfg
        self.fleet = fleet.load()

    def _state(self) -> dict[str, Any]:
        path = _state_file(self.cfg)
        state = json.loads(path.read_text()) if path.exists() else {}
        state.setdefault("next_domid", 1)
        domains = state.setdefault("domains", {})
        for name in list(domains):  # a domain whose container died is gone
            if containers.running(self.cfg, name) is None:
                del domains[name]
        return state

    def _save(self, state: dict[str, Any]) -> None:
        _state_file(self.cfg).write_text(json.dumps(state, indent=1))

    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        op = req.get("op")
        asker = req.get("dom0")
        if op == "list":
            return {"ok": True, "domains": self.list(asker)}
        name = str(req.get("name", ""))
        try:
            guest = self.fleet.guest(name)
        except KeyError:
            guest = None
        if guest is None or guest.name != name:  # Xen knows domains by their Xen name only
            return {"ok": False, "error": f"domain {name!r} is not a lab guest"}
        where = str(asker or guest.xen_host)
        if where not in (guest.xen_host, guest.rehome_to):
            return {"ok": False, "error": f"{name} has no disks on {where} (not its dom0)"}
        if op == "create":
            memory, vcpus = int(req.get("memory_mib", 512)), int(req.get("vcpus", 1))
            return self.create(guest, where, memory, vcpus, str(req.get("config") or ""))
        if op in ("shutdown", "destroy"):
            return self.stop(guest, where, graceful=op == "shutdown")
        if op == "rename":
            return self.rename(guest, where, str(req.get("new", "")))
        return {"ok": False, "error": f"unknown op {op!r}"}

    def list(self, dom0_name: str | None = None) -> list[dict[str, Any]]:
        """The running domains (of one dom0 when it is named): ``name`` is what Xen calls
        the domain (the guest's name unless renamed), ``guest`` the lab guest it runs."""
        state = self._state()
        now = time.time()
        return [
            {
                **d,
                "name": d.get("name", n),
                "guest": n,
                "state": "-b----",
                "cpu_time": round((now - d["started"]) / 50, 1),
            }
            for n, d in sorted(state["domains"].items(), key=lambda kv: kv[1]["domid"])
            if dom0_name is None or self._runs_on(n, d) == dom0_name
        ]

    def rename(self, guest: fleet.Guest, where: str, new: str) -> dict[str, Any]:
        state = self._state()
        domain = state["domains"].get(guest.name)
        if domain is None or self._runs_on(guest.name, domain) != where:
            return {"ok": False, "error": f"domain {guest.name!r} is not running on {where}"}
        taken = {d.get("name", n) for n, d in state["domains"].items() if n != guest.name}
        if not new or new in taken or new == "Domain-0":
            return {"ok": False, "error": f"cannot rename to {new!r}: the name is taken"}
        domain["name"] = new
        self._save(state)
        return {"ok": True, "domid": domain["domid"]}

    def _runs_on(self, name: str, domain: dict[str, Any]) -> str:
        return str(domain.get("dom0") or self.fleet.guest(name).xen_host)

    def _mounted_in_dom0(self, guest: fleet.Guest, where: str) -> list[str]:
        """LVs of ``guest`` on dom0 ``where`` that it has mounted (major:minor in its
        mountinfo)."""
        pid = containers.running(self.cfg, where)
        init = containers._ns_init(pid) if pid else None
        if init is None:
            return []
        mountinfo = Path(f"/proc/{init}/mountinfo").read_text().splitlines()
        devs = {line.split()[2] for line in mountinfo}
        busy = []
        for role, dev in dom0.attach_lvs(self.cfg, guest, where).items():
            rdev = os.stat(dev).st_rdev
            if f"{os.major(rdev)}:{os.minor(rdev)}" in devs:
                busy.append(dom0.lv_path(guest.name, role))
        return busy

    def create(
        self, guest: fleet.Guest, where: str, memory_mib: int, vcpus: int, config: str = ""
    ) -> dict[str, Any]:
        state = self._state()
        if guest.name in state["domains"]:
            domain = state["domains"][guest.name]
            if self._runs_on(guest.name, domain) != where:
                return {
                    "ok": False,
                    "error": f"{guest.name} runs on {self._runs_on(guest.name, domain)}: the "
                    "lab never starts a guest on two dom0s (split brain)",
                }
            domid = domain["domid"]
            return {
                "ok": False,
                "error": f'Domain {domid}:Domain with name "{guest.name}" already exists.',
            }
        busy = self._mounted_in_dom0(guest, where)
        if busy:
            return {"ok": False, "error": f"{', '.join(busy)} mounted in the dom0: unmount first"}
        loops = dom0.attach_lvs(self.cfg, guest, where)
        ns = net.host_net_up(
            self.cfg, guest.name, guest.address, guest.mac, guest.extra_ips,
            backend=guest.backend_ips, backend_mac=guest.backend_mac,
        )  # fmt: skip
        containers.start(self.cfg, dom0.guest_spec(self.cfg, guest, loops), ns)
        domid = state["next_domid"]
        state["next_domid"] = domid + 1
        state["domains"][guest.name] = {
            "domid": domid,
            "memory_mib": memory_mib,
            "vcpus": vcpus,
            "started": time.time(),
            "dom0": where,
            "config": config or guest.xen_config,
        }
        self._save(state)
        return {"ok": True, "domid": domid}

    def stop(self, guest: fleet.Guest, where: str, graceful: bool) -> dict[str, Any]:
        name = guest.name
        state = self._state()
        if name not in state["domains"] or self._runs_on(name, state["domains"][name]) != where:
            return {"ok": False, "error": f"domain {name!r} is not running on {where}"}
        domid = state["domains"][name]["domid"]
        if graceful and ignores_shutdown(self.cfg, name):
            return {"ok": True, "domid": domid, "pending": True}
        stop_guest(self.cfg, name, graceful)
        del state["domains"][name]
        self._save(state)
        return {"ok": True, "domid": domid}


IGNORE_SHUTDOWN = "run/x2k-lab-ignore-shutdown"


def ignores_shutdown(cfg: LabConfig, name: str) -> bool:
    """Whether the guest holds the lab fault that makes it ignore a shutdown request (the
    file is in the guest's own /run, a tmpfs of its mount namespace)."""
    found = containers.seen_inside(cfg, name, dom0.guest_root(cfg, name) / IGNORE_SHUTDOWN)
    return found is not None and found.exists()


def stop_guest(cfg: LabConfig, name: str, graceful: bool) -> None:
    """Stop a guest's container and take its network down (its LVs stay attached)."""
    containers.stop(cfg, name, graceful=graceful)
    net.host_net_down(cfg, name)


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        controller: Controller = self.server.controller  # type: ignore[attr-defined]
        try:
            req = json.loads(self.rfile.readline())
            answer = controller.handle(req)
        except Exception as exc:  # report to xl, keep serving
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        self.wfile.write((json.dumps(answer) + "\n").encode())


def serve(cfg: LabConfig) -> None:
    """Serve requests one at a time (never two domain operations at once)."""
    path = socket_dir(cfg) / SOCKET_NAME
    path.unlink(missing_ok=True)
    server = socketserver.UnixStreamServer(str(path), _Handler)
    server.controller = Controller(cfg)  # type: ignore[attr-defined]
    server.serve_forever()


def request(cfg: LabConfig, req: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    """Send one request to the controller (what the dom0's xl does)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(str(socket_dir(cfg) / SOCKET_NAME))
        sock.sendall((json.dumps(req) + "\n").encode())
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def start_controller(cfg: LabConfig, timeout: float = 10.0) -> int:
    pid = read_pid(_pidfile(cfg))
    if pid is not None:
        return pid
    socket_dir(cfg).mkdir(parents=True, exist_ok=True)
    cfg.pids.mkdir(parents=True, exist_ok=True)
    sock = socket_dir(cfg) / SOCKET_NAME
    sock.unlink(missing_ok=True)
    env = {**os.environ, "XEN2KVM_LAB_DIR": str(cfg.root), "XEN2KVM_LAB_PREFIX": cfg.prefix}
    with (cfg.run / "xen-controller.log").open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "xen2kvm.lab.hypervisor", "serve"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            env=env,
            start_new_session=True,
        )
    _pidfile(cfg).write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + timeout
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"xen controller did not start, see {cfg.run}/xen-controller.log")
        time.sleep(0.05)
    return proc.pid


def stop_controller(cfg: LabConfig) -> None:
    containers.kill_ours(cfg, _pidfile(cfg))
    (socket_dir(cfg) / SOCKET_NAME).unlink(missing_ok=True)


def controller_pid(cfg: LabConfig) -> int | None:
    return read_pid(_pidfile(cfg))


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve(LabConfig.from_env())
    else:
        sys.exit("usage: python -m xen2kvm.lab.hypervisor serve")
