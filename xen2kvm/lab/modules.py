"""The lab's 64-bit kernel modules packages, for the 32-bit guests a dom0 boots (rehome).

LAB-BUILT, not Debian's: one ``linux-modules-<release>`` amd64 package per kernel release
the lab's dom0s can claim to run (``xl info``). Each holds real Debian amd64 module files
(``dummy`` and ``8021q`` with its dependencies garp, mrp, stp, llc), taken from the
cached ``linux-image-*-amd64`` package of the lab repo and placed under
``/lib/modules/<release>/``, with the ``modules.dep`` that ``depmod -b`` writes for them
and a postinst that runs ``depmod`` when the guest has it. The lab's guests are containers
on the host's kernel: these modules can be installed and resolved (``modules.dep``),
never loaded.

Built once into ``<cache>/modules`` (what ``inventory/lab.yml`` names as xen2's
``modules_packages``).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .config import LabConfig
from .util import run

# release -> package version; the first is the dom0s' kernel at ``lab up``.
RELEASES = {"6.1.0-35-amd64": "6.1.137-1+x2klab1", "6.1.0-37-amd64": "6.1.140-1+x2klab1"}
MODULES = (
    "kernel/drivers/net/dummy.ko",
    "kernel/net/8021q/8021q.ko",
    "kernel/net/802/garp.ko",
    "kernel/net/802/mrp.ko",
    "kernel/net/802/stp.ko",
    "kernel/net/llc/llc.ko",
)
POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ] && command -v depmod >/dev/null 2>&1; then
    depmod -a {release}
fi
"""


def packages_dir(cfg: LabConfig) -> Path:
    return cfg.cache / "modules"


def package_path(cfg: LabConfig, release: str) -> Path:
    return packages_dir(cfg) / f"linux-modules-{release}_{RELEASES[release]}_amd64.deb"


def _kernel_deb(cfg: LabConfig) -> Path:
    debs = sorted((cfg.cache / "repo" / "amd64").glob("linux-image-[0-9]*-amd64_*_amd64.deb"))
    if not debs:
        raise RuntimeError("no linux-image-*-amd64 package in the lab repo: rebuild the trees")
    return debs[-1]


def _extract_modules(deb: Path, dest: Path) -> None:
    """The MODULES files of the kernel package ``deb`` into ``dest`` (flat by their path)."""
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True)
    wanted = [f"*/{module}" for module in MODULES]
    subprocess.run(
        ["tar", "-x", "-C", str(dest), "--wildcards", *wanted],
        input=tar.stdout,
        check=True,
    )


def build(cfg: LabConfig) -> list[str]:
    """Build the missing packages; the releases built."""
    built = []
    for release, version in RELEASES.items():
        deb = package_path(cfg, release)
        if deb.exists():
            continue
        work = cfg.cache / "build" / f"modules-{release}"
        shutil.rmtree(work, ignore_errors=True)
        extracted = work / "extracted"
        extracted.mkdir(parents=True)
        _extract_modules(_kernel_deb(cfg), extracted)
        root = work / "root"
        moddir = root / "lib/modules" / release
        for module in MODULES:
            found = next(extracted.glob(f"lib/modules/*/{module}"))
            (moddir / module).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(found, moddir / module)
        (moddir / "modules.order").write_text("".join(f"{m}\n" for m in MODULES))
        for empty in ("modules.builtin", "modules.builtin.modinfo"):
            (moddir / empty).write_text("")
        run(["depmod", "-b", str(root), release])
        (root / "DEBIAN").mkdir()
        (root / "DEBIAN/control").write_text(
            f"Package: linux-modules-{release}\nVersion: {version}\nArchitecture: amd64\n"
            "Maintainer: xen2kvm lab <root@localhost>\nSection: kernel\nPriority: optional\n"
            f"Description: kernel modules for {release} (built by the xen2kvm lab)\n"
            " A few real Debian amd64 modules under the release this lab's dom0 claims,\n"
            " for the rehoming of 32-bit guests. Not a Debian package.\n"
        )
        (root / "DEBIAN/postinst").write_text(POSTINST.format(release=release))
        (root / "DEBIAN/postinst").chmod(0o755)
        packages_dir(cfg).mkdir(parents=True, exist_ok=True)
        run(
            ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(deb)], capture=True
        )
        shutil.rmtree(work, ignore_errors=True)
        built.append(release)
    return built
