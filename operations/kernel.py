"""
Keep a guest's kernel modules in step with the kernel it boots but does not install: a
32-bit domU run with its 64-bit dom0's kernel (the field report's second part). The
modules package is pushed over the deploy's own connection and installed with
``dpkg -i --force-architecture``; no service on the dom0 (no NFS export of modules).
"""

from __future__ import annotations

import glob
import os
import posixpath
import subprocess
from dataclasses import dataclass

from pyinfra import host, inventory
from pyinfra.api import (
    FileUploadCommand,
    OperationError,
    OperationValueError,
    QuoteString,
    StringCommand,
    operation,
)

from facts.debian import DebianArchitecture
from facts.kernel import KernelModules, check_release
from facts.xen import XenInfo
from operations.util.facts import fact

# The dpkg architecture a dom0's kernel (``xl info``'s machine) belongs to.
MACHINE_ARCH = {"x86_64": "amd64", "i686": "i386"}
SPOOL = "/var/cache/xen2kvm"  # where the package lands in the guest until it is installed


@dataclass(frozen=True)
class ModulesPackage:
    path: str  # on the controller
    name: str  # linux-modules-<release> (or linux-image-<release>)
    version: str
    arch: str


def packages_dir(packages: str, cwd: str | None = None) -> str:
    """The controller's directory of modules packages: ``$VARS`` and ``~`` expanded,
    relative to the deploy's directory."""
    path = os.path.expanduser(os.path.expandvars(packages))
    return os.path.normpath(os.path.join(cwd or os.getcwd(), path))


def deb_fields(path: str) -> tuple[str, str, str]:
    """(Package, Version, Architecture) of a .deb on the controller, from ``dpkg-deb``."""
    try:
        out = subprocess.run(
            ["dpkg-deb", "--show", "--showformat=${Package}\\t${Version}\\t${Architecture}", path],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise OperationError(f"cannot read the package {path}: {exc}") from None
    fields = out.split("\t")
    if len(fields) != 3:
        raise OperationError(f"dpkg-deb gives no package, version and arch for {path}")
    return fields[0], fields[1], fields[2]


def find_package(directory: str, release: str, arch: str) -> ModulesPackage:
    """The one modules package for ``release`` in ``directory`` (named as ``apt-get
    download`` names it), checked against its own control fields."""
    if not os.path.isdir(directory):
        raise OperationError(f"the modules packages directory {directory} does not exist")
    names = [f"linux-{kind}-{release}" for kind in ("modules", "image")]
    found = sorted(
        path
        for name in names
        for path in glob.glob(os.path.join(glob.escape(directory), f"{name}_*.deb"))
    )
    if not found:
        raise OperationError(
            f"no modules package for kernel {release} in {directory}: put "
            f"{names[0]}_*_{arch}.deb there (or `apt-get download {names[1]}`)"
        )
    if len(found) > 1:
        listed = ", ".join(os.path.basename(path) for path in found)
        raise OperationError(f"several packages for kernel {release} in {directory}: {listed}")
    name, version, deb_arch = deb_fields(found[0])
    if name not in names or deb_arch != arch:
        raise OperationError(
            f"{found[0]} is {name} {version} ({deb_arch}), not {names[0]} for {arch}"
        )
    return ModulesPackage(found[0], name, version, deb_arch)


@operation()
def modules(dom0: str, packages: str | None = None):
    """
    Install in this guest the modules of the kernel its dom0 boots it with, when the
    guest's userland is of another architecture (a 32-bit guest on a 64-bit dom0), and
    push them again whenever the dom0's kernel changes.

    + dom0: the inventory name of the dom0 the guest runs on (its ``xl info`` gives the
      kernel release and machine)
    + packages: the controller's directory of modules packages, one per kernel release,
      named as ``apt-get download`` names them (``linux-modules-<release>_<version>_<arch>
      .deb`` or ``linux-image-...``); ``$VARS`` and ``~`` are expanded. Only needed
      when the guest's architecture differs from the dom0 kernel's

    Nothing is pushed when the installed package for the dom0's release has the version
    of the one on the controller and ``/lib/modules/<release>`` exists. Packages for
    older releases stay installed (a guest may still be booted with the older kernel).

    **Example:**

    .. code:: python

        kernel.modules(
            name="64-bit modules for legacy2",
            dom0="xen2",
            packages="/srv/xen2kvm/modules",
        )
    """
    if not isinstance(dom0, str) or not dom0 or dom0.startswith("-"):
        raise OperationValueError(f"dom0 must be an inventory host name, not {dom0!r}")
    if packages is not None and (not isinstance(packages, str) or not packages):
        raise OperationValueError(f"packages must be a directory, not {packages!r}")

    info = fact(inventory.get_host(dom0), XenInfo)
    try:
        release = check_release(info.get("release"))
    except ValueError as exc:
        raise OperationError(f"{dom0}: xl info: {exc}") from None
    machine = info.get("machine")
    kernel_arch = MACHINE_ARCH.get(machine or "")
    if kernel_arch is None:
        raise OperationError(f"{dom0}: xl info gives machine {machine!r}, not x86_64 nor i686")
    arch = fact(host, DebianArchitecture)
    if arch == kernel_arch:
        host.noop(
            f"{host.name} has an {arch} userland like {dom0}'s {machine} kernel {release}: "
            "its own kernel packages hold its modules, nothing to push"
        )
        yield from ()
        return

    if packages is None:
        raise OperationError(
            f"{host.name} ({arch}) boots {dom0}'s {machine} kernel: give {dom0} a "
            "modules_packages directory in the inventory, with its modules package"
        )
    wanted = find_package(packages_dir(packages, host.state.cwd), release, kernel_arch)
    held = fact(host, KernelModules, release=release)
    installed = held["packages"].get(wanted.name)
    if installed and installed["version"] == wanted.version and held["directory"]:
        host.noop(
            f"{wanted.name} {wanted.version} is already installed: "
            f"the modules of {dom0}'s kernel {release}"
        )
        yield from ()
        return

    dest = posixpath.join(SPOOL, os.path.basename(wanted.path))
    yield StringCommand("mkdir -p -m 0700", QuoteString(SPOOL))
    yield FileUploadCommand(wanted.path, dest, remote_temp_filename=host.get_temp_filename(dest))
    yield StringCommand(
        "dpkg -i --force-architecture", QuoteString(dest), "&& rm -f", QuoteString(dest)
    )
