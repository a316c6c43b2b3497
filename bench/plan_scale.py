"""Benchmark: inventory load, validation and planning for a large generated fleet.

    python bench/plan_scale.py [--guests 500] [--hosts 20]

Writes a fleet of GUESTS guests on HOSTS dom0s and HOSTS KVM hosts, then times, in one
process: loading and validating it (``load_fleet``), and planning every guest's new disk
and domain from a Xen config, an fstab and LV sizes like a real guest's (``parse_xen_config``,
``parse_fstab``, ``source_volumes``, ``plan_guest``), as each run's plan phase does. Prints
the seconds of each part and the peak memory, and ends with one line
``bench plan_scale: guests=N seconds=S peak_mib=M``. Needs no lab; not part of CI.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xen2kvm.fstab import parse_fstab
from xen2kvm.inventory import load_fleet
from xen2kvm.planner import plan_guest, source_volumes
from xen2kvm.xenconfig import parse_xen_config

GIB = 1024**3
LVS = (("root", 8 * GIB), ("var", 20 * GIB), ("swap", GIB))


def fleet_yaml(guests: int, hosts: int) -> str:
    lines = ["defaults:", "  ssh_user: root", "xen_hosts:"]
    for h in range(hosts):
        lines += [f"  xen{h}.example.net:", f"    address: 10.1.{h}.1"]
    lines.append("kvm_hosts:")
    for h in range(hosts):
        lines += [f"  kvm{h}.example.net:", f"    address: 10.2.{h}.1", "    vg: vg0",
                  "    bridge: br0", "    libvirt_uri: qemu:///system"]  # fmt: skip
    lines.append("guests:")
    for g in range(guests):
        h = g % hosts
        lines += [
            f"  g{g}.example.net:",
            f"    wave: {1 + g // 50}",
            f"    xen_host: xen{h}.example.net",
            f"    kvm_host: kvm{h}.example.net",
            f"    address: 10.{100 + g // 250}.{g % 250}.10",
            f"    xen_config: /etc/xen/g{g}.cfg",
            "    services: [ssh, cron]",
        ]
    return "\n".join(lines) + "\n"


def xen_config(g: int) -> str:
    return (
        f"name = 'g{g}'\nmemory = 1024\nvcpus = 2\n"
        f"disk = ['phy:/dev/xenvg/g{g}-root,xvda2,w', 'phy:/dev/xenvg/g{g}-var,xvda3,w',"
        f" 'phy:/dev/xenvg/g{g}-swap,xvda1,w']\n"
        f"vif = ['mac=00:16:3e:{g // 65536 % 256:02x}:{g // 256 % 256:02x}:{g % 256:02x},"
        " bridge=xenbr0']\n"
    )


FSTAB = (
    "/dev/xvda2 / ext4 errors=remount-ro 0 1\n"
    "/dev/xvda3 /var ext4 defaults 0 2\n"
    "/dev/xvda1 none swap sw 0 0\n"
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--guests", type=int, default=500)
    parser.add_argument("--hosts", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fleet.yml"
        path.write_text(fleet_yaml(args.guests, args.hosts))
        started = time.perf_counter()
        fleet = load_fleet(path)
        loaded = time.perf_counter()
        for g, guest in enumerate(fleet.guests.values()):
            domain = parse_xen_config(xen_config(g), guest.xen_config)
            sizes = {f"/dev/xenvg/g{g}-{lv}": size for lv, size in LVS}
            volumes = source_volumes(guest.name, domain, parse_fstab(FSTAB), sizes)
            plan_guest(guest, fleet.kvm_hosts[str(guest.kvm_host)], domain, volumes)
        planned = time.perf_counter()
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"load and validate: {loaded - started:.2f} s for {len(fleet.guests)} guests")
    print(f"plan every guest:  {planned - loaded:.2f} s")
    print(
        f"bench plan_scale: guests={len(fleet.guests)} hosts={args.hosts} "
        f"seconds={planned - started:.2f} peak_mib={peak_mib:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
