"""
Manage Xen domains on a dom0: whether they start at boot.
"""

from __future__ import annotations

import posixpath

from pyinfra import host
from pyinfra.api import OperationValueError, QuoteString, StringCommand, operation

from facts.xen import XenAutostart


def _refers_to(name: str, target: str | None, config: str, auto_dir: str) -> bool:
    if target is None:  # a plain file: a copy of the config
        return name == posixpath.basename(config)
    return posixpath.normpath(posixpath.join(auto_dir, target)) == posixpath.normpath(config)


@operation()
def autostart(config: str, enabled: bool = True, auto_dir: str = "/etc/xen/auto"):
    """
    Enable or disable the start at boot of a Xen domain (its entry in ``/etc/xen/auto``).

    + config: the domain's config file, for example ``/etc/xen/web1.cfg``
    + enabled: whether the dom0's ``xendomains`` should start the domain at boot
    + auto_dir: the autostart directory ``xendomains`` reads

    Enabling adds a symlink to the config. Disabling removes symlinks to it, and moves a
    plain copy aside to ``<auto_dir>.xen2kvm-disabled/`` instead of deleting it.

    **Example:**

    .. code:: python

        xen.autostart(
            name="Do not start web1 on Xen any more",
            config="/etc/xen/web1.cfg",
            enabled=False,
        )
    """
    for label, value in (("config", config), ("auto_dir", auto_dir)):
        if not isinstance(value, str) or not value.startswith("/"):
            raise OperationValueError(f"{label} must be an absolute path, not {value!r}")

    entries = host.get_fact(XenAutostart, auto_dir=auto_dir)
    matching = {
        name: target
        for name, target in sorted(entries.items())
        if _refers_to(name, target, config, auto_dir)
    }
    link = posixpath.join(auto_dir, posixpath.basename(config))

    if enabled:
        if matching:
            host.noop(f"{config} already starts at boot")
            return
        if posixpath.basename(config) in entries:
            raise OperationValueError(
                f"{link} exists and is not {config}: remove it or name the config differently"
            )
        yield StringCommand("mkdir -p", QuoteString(auto_dir))
        yield StringCommand("ln -s", QuoteString(config), QuoteString(link))
        return

    if not matching:
        host.noop(f"{config} already does not start at boot")
        return
    aside = f"{auto_dir.rstrip('/')}.xen2kvm-disabled"
    for name, target in matching.items():
        path = posixpath.join(auto_dir, name)
        if target is None:
            yield StringCommand("mkdir -p", QuoteString(aside))
            yield StringCommand("mv -f", QuoteString(path), QuoteString(f"{aside}/{name}"))
        else:
            yield StringCommand("rm -f", QuoteString(path))
