"""Kernel of a rehomed 32-bit guest: its new dom0 boots it with the dom0's own 64-bit
kernel, and the guest holds and resolves that kernel's modules (``tasks/rehome.py``,
``operations/kernel.py``). Guests that went to KVM, and rehomed guests whose userland
matches the dom0's kernel, are skipped.
"""

from __future__ import annotations

import json
import posixpath

import pytest
import testinfra

from xen2kvm.journal import REHOME_COMPLETE
from xen2kvm.paths import DOM0_STATE
from xen2kvm.rehome import kernel_paths
from xen2kvm.xenconfig import parse_xen_config

MACHINE_ARCH = {"x86_64": "amd64", "i686": "i386"}  # xl info's machine -> dpkg arch


class Dom0:
    """The new dom0 of a rehomed guest, as the checks read it."""

    def __init__(self, host) -> None:
        self.host = host
        info = host.run("xl info")
        if info.rc != 0:
            pytest.fail(f"xl info failed on the dom0: {info.stderr.strip()}")
        pairs = (line.split(":", 1) for line in info.stdout.splitlines() if ":" in line)
        self.info = {key.strip(): value.strip() for key, value in pairs}

    @property
    def release(self) -> str:
        return self.info["release"]


_DOM0S: dict[str, Dom0] = {}


@pytest.fixture
def dom0(request, inventory, ssh_config) -> Dom0:
    """The rehomed guest's new dom0. Asked for before ``target``: a guest that was not
    rehomed is skipped before anything connects to it or to its KVM host."""
    spec = inventory.fleet.guests[request.node.callspec.params["target"]]
    name = getattr(spec, "rehome_to", None)
    if not name:
        pytest.skip(f"{spec.name}: not rehomed (it went to KVM)")
    if name not in _DOM0S:
        host = testinfra.get_host(f"ssh://{name}", ssh_config=ssh_config, controlpersist=120)
        _DOM0S[name] = Dom0(host)
    found = _DOM0S[name]
    journal = found.host.run("cat %s", f"{DOM0_STATE}/journal/{spec.name}.jsonl")
    if REHOME_COMPLETE not in journal.stdout:
        pytest.fail(
            f"{spec.name}: the journal on {name} has no {REHOME_COMPLETE}: not rehomed "
            f"yet (run: pyinfra INVENTORY deploy.py --limit wave{spec.wave})"
        )
    return found


@pytest.fixture
def foreign(dom0, target) -> Dom0:
    """Only for a guest whose userland differs from its dom0 kernel's (32-bit on 64)."""
    kernel_arch = MACHINE_ARCH.get(dom0.info.get("machine", ""))
    if target.spec.arch == kernel_arch:
        pytest.skip(f"{target.spec.name}: {target.spec.arch} like its dom0's kernel")
    return dom0


def xen_domain(dom0: Dom0, spec, fleet) -> str:
    """The guest's Xen domain name on its new dom0: the inventory's ``xen_domain``, or what
    its config there says (``name =``), as the deploy finds it; never its inventory name."""
    if getattr(spec, "xen_domain", None):
        return spec.xen_domain
    directory = fleet.xen_hosts[spec.rehome_to].xen_config_dir
    path = f"{directory}/{posixpath.basename(spec.xen_config)}"
    config = dom0.host.file(path)
    if not config.exists:
        pytest.fail(f"{spec.name}: no Xen config {path} on {spec.rehome_to}")
    name = parse_xen_config(config.content_string, f"{spec.rehome_to}:{path}").name
    if not name:
        pytest.fail(f"{spec.name}: {spec.rehome_to}:{path} sets no name")
    return name


def test_domain_boots_the_dom0_kernel(dom0, target, inventory):
    kernel, ramdisk = kernel_paths(dom0.release)
    domain = xen_domain(dom0, target.spec, inventory.fleet)
    result = dom0.host.run("xl list -l %s", domain)
    assert result.rc == 0, (
        f"{target.spec.name}: its Xen domain {domain} is not running on its dom0: {result.stderr}"
    )
    pv = json.loads(result.stdout)[0]["config"]["b_info"]["type.pv"]
    assert (pv.get("kernel"), pv.get("ramdisk")) == (kernel, ramdisk), (
        f"{target.spec.name}: its domain boots {pv.get('kernel')} / {pv.get('ramdisk')}, "
        f"not the dom0's kernel {dom0.release}"
    )


def test_guest_runs_the_dom0_kernel(dom0, target):
    if not target.host.file("/proc/xen").exists:
        pytest.skip(
            f"{target.spec.name}: no /proc/xen, not a Xen PV kernel (the lab's guests are "
            "containers on the machine's own kernel)"
        )
    running = target.host.run("uname -r").stdout.strip()
    assert running == dom0.release, (
        f"{target.spec.name} runs kernel {running}, its dom0 boots it with {dom0.release}"
    )


def test_modules_directory_for_the_kernel(foreign, target):
    path = f"/lib/modules/{foreign.release}"
    assert target.host.file(path).is_directory, (
        f"{target.spec.name}: no {path}: the modules of its dom0's kernel are not installed"
        + target.excerpt("ls /lib/modules")
    )


def test_modules_resolve(foreign, target):
    """Every module of modules.dep and each of its dependencies is there. With kmod in the
    guest, modprobe resolves the first one too (a dry run: the lab's guests cannot load
    modules, they run on the machine's kernel)."""
    release = foreign.release
    dep = target.host.file(f"/lib/modules/{release}/modules.dep")
    assert dep.exists, f"{target.spec.name}: no modules.dep for {release}"
    named = [path.rstrip(":") for line in dep.content_string.splitlines() for path in line.split()]
    assert named, f"{target.spec.name}: modules.dep of {release} is empty"
    missing = [p for p in named if not target.host.file(f"/lib/modules/{release}/{p}").exists]
    assert not missing, f"{target.spec.name}: modules.dep names missing files: {missing[:10]}"
    if target.host.exists("modprobe"):
        module = named[0].rsplit("/", 1)[-1].split(".ko")[0]
        result = target.host.run(
            "modprobe --dry-run --show-depends --set-version %s %s", release, module
        )
        assert result.rc == 0, f"{target.spec.name}: modprobe -n {module}: {result.stderr}"
