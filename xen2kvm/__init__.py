"""xen2kvm: move a fleet of Xen domUs to KVM/libvirt, wave by wave, with pyinfra.

The package holds the pure logic (Xen config parsing, inventory validation, layout
planning, template rendering) and the lab. pyinfra facts live in ``facts/`` and
operations in ``operations/`` at the top of the repository, beside ``deploy.py``.
"""

__version__ = "0.1.0"
