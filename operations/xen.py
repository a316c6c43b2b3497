"""
Manage Xen domains on a dom0: whether they run, and whether they start at boot.
"""

from __future__ import annotations

import posixpath

from pyinfra import host
from pyinfra.api import OperationValueError, QuoteString, StringCommand, operation

from facts.xen import XenAutostart, XenDomains
from operations.util.checks import check_bool, check_domain, check_path, check_timeout
from operations.util.facts import fact


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
    check_path("config", config)
    check_path("auto_dir", auto_dir)

    entries = fact(host, XenAutostart, auto_dir=auto_dir)
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


@operation()
def domain(
    domain: str,
    config: str,
    running: bool = True,
    shutdown_timeout: int = 300,
    force: bool = False,
):
    """
    Start or shut down a Xen domain.

    + domain: the domain's name, as ``xl list`` shows it
    + config: its config file on this dom0, for ``xl create``
    + running: whether the domain should run
    + shutdown_timeout: seconds ``xl shutdown -w`` may wait for the domain to stop
    + force: after the timeout, ``xl destroy`` the domain instead of failing

    A shutdown that outlasts ``shutdown_timeout`` fails the operation and leaves the
    domain as it is (still stopping, or hung), unless ``force=True``: then the domain is
    destroyed (pulled the plug).

    This operation does not know about the KVM side: the caller must make sure the
    migrated copy of the guest is not running (nor started) on KVM before starting the
    domain here, or both would write to the same data (split brain).

    **Example:**

    .. code:: python

        xen.domain(
            name="Stop web1 on Xen",
            domain="web1",
            config="/etc/xen/web1.cfg",
            running=False,
        )
    """
    check_domain(domain, "Xen")
    check_path("config", config)
    check_bool("running", running)
    check_bool("force", force)
    check_timeout("shutdown_timeout", shutdown_timeout)

    is_running = domain in fact(host, XenDomains)

    if running:
        if is_running:
            host.noop(f"Xen domain {domain} is already running")
            yield from ()
            return
        yield StringCommand("xl create", QuoteString(config))
        return

    if not is_running:
        host.noop(f"Xen domain {domain} is already shut down")
        yield from ()
        return
    shutdown = StringCommand(f"timeout {shutdown_timeout} xl shutdown -w", QuoteString(domain))
    if not force:
        yield StringCommand(
            shutdown,
            "|| { echo",
            QuoteString(
                f"{domain} still runs {shutdown_timeout}s after its shutdown: left running "
                "(shutdown_timeout)"
            ),
            ">&2; exit 1; }",
        )
        return
    yield StringCommand(
        shutdown,
        "|| { echo",
        QuoteString(f"{domain} still runs {shutdown_timeout}s after its shutdown: destroying it"),
        ">&2; xl destroy",
        QuoteString(domain),
        "; }",
    )
