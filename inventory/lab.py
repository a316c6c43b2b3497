"""The built-in lab fleet (``xen2kvm lab up``), as pyinfra sees it.

Same schema as ``prod.yml``; the lab's own SSH key and known_hosts file are added to every
host's data. Reach the lab only from inside its network namespace::

    xen2kvm lab exec -- pyinfra inventory/lab.py fact server.Os
"""

import os
from pathlib import Path

from xen2kvm.lab.config import LabConfig
from xen2kvm.pyinfra_inventory import fleet_groups

_lab = LabConfig.from_env()
# lab.yml names the lab's directory as ${XEN2KVM_LAB_DIR} (xen2's modules_packages).
os.environ.setdefault("XEN2KVM_LAB_DIR", str(_lab.root))

globals().update(
    fleet_groups(
        Path(__file__).with_name("lab.yml"),
        {
            "ssh_key": str(_lab.ssh_key),
            "ssh_known_hosts_file": str(_lab.known_hosts),
            "ssh_strict_host_key_checking": "yes",
        },
    )
)
