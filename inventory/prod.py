"""The production fleet, as pyinfra sees it.

The fleet itself is described in ``prod.yml`` beside this file (edit that, not this).
This file validates it and turns it into pyinfra groups:

- ``xen_hosts``, ``kvm_hosts``, ``guests``
- ``wave1``, ``wave2``, ...: each wave's guests plus the dom0s and KVM hosts they need

Usage::

    pyinfra inventory/prod.py debug-inventory
    pyinfra inventory/prod.py deploy.py --limit wave1
"""

from pathlib import Path

from xen2kvm.pyinfra_inventory import fleet_groups

# One module-level list per group: pyinfra reads them as the inventory's groups.
globals().update(fleet_groups(Path(__file__).with_name("prod.yml")))
