"""
Freeze what a guest's plan is computed from on its destination (see
``xen2kvm.planinputs``): every later run plans exactly the same disk from it, even when
the guest's files have changed since or the guest is down.
"""

from __future__ import annotations

from io import StringIO

from pyinfra import host
from pyinfra.api import OperationValueError, operation
from pyinfra.facts.files import FileContents
from pyinfra.operations import files

from operations.util.checks import check_guest, check_path
from operations.util.facts import fact
from xen2kvm import paths
from xen2kvm.planinputs import PlanInputs


@operation()
def frozen(
    guest: str,
    xen_config: str,
    fstab: str,
    sizes: dict[str, int],
    state_dir: str = "/var/lib/xen2kvm",
    filesystems: dict[str, dict[str, str]] | None = None,
    features: dict[str, list[str]] | None = None,
):
    """
    Freeze a guest's plan inputs on its destination (run there, before anything is built).
    Inputs frozen earlier are kept as they are: they are what the disk was built from.

    + guest: the guest (its name in the fleet inventory)
    + xen_config: the text of its Xen config on the dom0, as read now
    + fstab: the text of its ``/etc/fstab``, as read now
    + sizes: the size in bytes of each of its disks on the dom0 (``/dev/xenvg/web1-root``)
    + state_dir: the destination's state directory (``<state_dir>/plans/<guest>.json``)
    + filesystems: what blkid reads on each of its disks on the dom0, its ``TYPE``,
      ``UUID`` and ``LABEL`` (those it has): the new filesystems keep the UUID and label
    + features: the features dumpe2fs lists for each of its ext filesystems on the dom0:
      the new ones are made with them (``xen2kvm.filesystems.mkfs_features``)

    **Example:**

    .. code:: python

        plans.frozen(
            guest="web1",
            xen_config=open("web1.cfg").read(),
            fstab="/dev/xvda2 / ext4 defaults 0 1\n",
            sizes={"/dev/xenvg/web1-root": 1610612736},
            filesystems={"/dev/xenvg/web1-root": {"TYPE": "ext4", "LABEL": "root"}},
            features={"/dev/xenvg/web1-root": ["has_journal", "ext_attr", "extent"]},
        )
    """
    check_guest(guest)
    check_path("state_dir", state_dir)
    for label, text in (("xen_config", xen_config), ("fstab", fstab)):
        if not isinstance(text, str):
            raise OperationValueError(f"{label} must be the file's text, not {text!r}")
    if not isinstance(sizes, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v > 0
        for k, v in sizes.items()
    ):
        raise OperationValueError(f"sizes must map devices to sizes in bytes, not {sizes!r}")
    if filesystems is not None and not (
        isinstance(filesystems, dict)
        and all(
            isinstance(k, str)
            and isinstance(v, dict)
            and all(isinstance(key, str) and isinstance(value, str) for key, value in v.items())
            for k, v in filesystems.items()
        )
    ):
        raise OperationValueError(
            f"filesystems must map devices to what blkid reads on them, not {filesystems!r}"
        )
    if features is not None and not (
        isinstance(features, dict)
        and all(
            isinstance(k, str)
            and isinstance(v, list)
            and all(isinstance(feature, str) for feature in v)
            for k, v in features.items()
        )
    ):
        raise OperationValueError(
            f"features must map devices to the features dumpe2fs lists, not {features!r}"
        )
    path = paths.plan_inputs(state_dir, guest)
    if fact(host, FileContents, path=path):
        host.noop(f"the plan of {guest} is already frozen")
        return
    yield from files.put._inner(
        src=StringIO(PlanInputs(xen_config, fstab, sizes, filesystems, features).to_json()),
        dest=path,
        mode="0600",
        create_remote_dir=True,
    )
