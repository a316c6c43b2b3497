"""Where the lab lives: one state directory and one namespace prefix.

Both can be moved with environment variables, so two labs (say, a developer's and a
test's) can run side by side on one machine without touching each other:

- ``XEN2KVM_LAB_DIR`` (default ``/var/tmp/xen2kvm-lab``): images, keys, pids, logs.
- ``XEN2KVM_LAB_PREFIX`` (default ``x2k``): every network namespace the lab makes is
  named ``<prefix>-...``; the lab network's namespace is ``<prefix>-net``.

All lab addresses live only inside those namespaces (198.51.100.0/24, TEST-NET-2, on
the bridge ``br0`` in ``<prefix>-net``, no uplink, no forwarding). The migration network
(203.0.113.0/24, TEST-NET-3, bridge ``br1`` in ``<prefix>-net`` without an address of its
own) joins only the dom0s and the KVM host, like the field report's crossover cable.
Nothing here ever adds an address or a route to the host's own namespace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

LAB_SUBNET = "198.51.100.0/24"
LAB_PREFIXLEN = 24
LAB_GATEWAY = "198.51.100.1"  # the bridge in <prefix>-net: where pyinfra/pytest/ssh run from
LAB_BRIDGE = "br0"
# The migration network: the dom0s' and kvm1's migration_address (inventory/lab.yml) live
# here; nothing else does, and <prefix>-net itself has no address on it (no route there).
MIGRATION_PREFIXLEN = 24
MIGRATION_BRIDGE = "br1"
# A second Xen bridge (xenbr1: a backend network), for a guest with two vifs: its second
# NIC and the addresses of its ``ips`` in BACKEND_SUBNET are there (RFC 2544's range, only
# in lab namespaces). <prefix>-net holds BACKEND_GATEWAY on it, to reach them from.
BACKEND_SUBNET = "198.18.0.0/24"
BACKEND_PREFIXLEN = 24
BACKEND_GATEWAY = "198.18.0.1"
BACKEND_BRIDGE = "br2"
BACKEND_XEN_BRIDGE = "xenbr1"


@dataclass(frozen=True)
class LabConfig:
    root: Path
    prefix: str

    @classmethod
    def from_env(cls) -> LabConfig:
        return cls(
            # A fixed, root-owned place on purpose: the lab runs as root and is found again
            # by later commands (lab exec, lab down, the tests).
            root=Path(os.environ.get("XEN2KVM_LAB_DIR", "/var/tmp/xen2kvm-lab")),  # noqa: S108
            prefix=os.environ.get("XEN2KVM_LAB_PREFIX", "x2k"),
        )

    @property
    def netns(self) -> str:
        """The lab network's namespace (bridge, tools, libvirtd for booted guests)."""
        return f"{self.prefix}-net"

    def host_netns(self, host: str) -> str:
        return f"{self.prefix}-{host}"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def ssh_key(self) -> Path:
        """Private key the operator (pyinfra, pytest) uses to reach every lab host."""
        return self.keys / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        """known_hosts file with the host keys of every lab host (strict checking stays on)."""
        return self.root / "known_hosts"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    @property
    def cache(self) -> Path:
        """Built images kept across ``lab down``/``lab up`` (debootstrap trees, disk images)."""
        return self.root / "cache"

    @property
    def run(self) -> Path:
        """Per-run state, removed by ``lab down``."""
        return self.root / "run"
