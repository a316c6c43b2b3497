"""Issue #12: a guest's fstab decides where the KVM host mounts and fills its filesystems
(below the new tree, with ``rsync --delete``). A mountpoint that leads out of the tree, or
that is not a plain normalised path, is refused when the guest is planned: one PlanError
naming the guest, the fstab line and why."""

from __future__ import annotations

import pytest

from xen2kvm.errors import PlanError, Xen2KvmError
from xen2kvm.fstab import mountpoint_problem, parse_fstab
from xen2kvm.planner import source_volumes
from xen2kvm.units import GIB
from xen2kvm.xenconfig import parse_xen_config

CONFIG = (
    "name='evil'\nmemory=256\n"
    "disk=['phy:/dev/vg0/evil-root,xvda1,w','phy:/dev/vg0/evil-data,xvda2,w']\n"
)
SIZES = {"/dev/vg0/evil-root": GIB, "/dev/vg0/evil-data": GIB}


def plan_with(mountpoint_field: str) -> list:
    fstab = (
        "# /etc/fstab of a hostile guest\n"
        "/dev/xvda1 / ext4 errors=remount-ro 0 1\n"
        f"/dev/xvda2 {mountpoint_field} ext4 defaults 0 2\n"
    )
    domain = parse_xen_config(CONFIG, "evil.cfg")
    return source_volumes("evil", domain, parse_fstab(fstab), SIZES)


UNSAFE = [
    ("/../../etc", "'.' or '..'"),
    ("/var/../../../etc", "'.' or '..'"),
    ("/./var", "'.' or '..'"),
    ("../etc", "not an absolute path"),
    ("etc", "not an absolute path"),
    ("//etc", "not normalised (/etc would be)"),
    ("/var//lib", "not normalised (/var/lib would be)"),
    ("/var/", "not normalised (/var would be)"),
    ("/srv/a\\011b", "control characters"),  # a tab, as fstab escapes it
    ("/srv/a\\012b", "control characters"),  # a newline
    ("/srv/\x1b[2J", "control characters"),  # a terminal escape
]


@pytest.mark.parametrize(("field", "why"), UNSAFE, ids=[u[0] for u in UNSAFE])
def test_an_unsafe_mountpoint_is_refused_naming_guest_line_and_why(field, why):
    with pytest.raises(PlanError) as info:
        plan_with(field)
    message = str(info.value)
    assert info.value.guest == "evil"
    assert info.value.field == "fstab"
    # The line is quoted as Python does (repr): a control character in it cannot reach
    # the operator's terminal as it is.
    assert f"line 3 ({f'/dev/xvda2 {field} ext4 defaults 0 2'!r})" in message
    assert why in message
    assert isinstance(info.value, Xen2KvmError)


UNNAMEABLE = ["/srv/a\\040b", "/srv/$(id)", "/srv/é", "/srv/a;b", "/srv/x'y"]


@pytest.mark.parametrize("field", UNNAMEABLE)
def test_a_mountpoint_the_journal_cannot_name_is_refused_as_not_yet_movable(field):
    with pytest.raises(PlanError) as info:
        plan_with(field)
    assert info.value.field == "fstab"
    assert "line 3" in str(info.value)
    assert "xen2kvm cannot move a filesystem mounted at" in str(info.value)
    assert "yet" in str(info.value)


@pytest.mark.parametrize("field", ["/var", "/var/lib/mysql", "/srv/www.example-1@x+y_z"])
def test_plain_mountpoints_are_planned(field):
    volumes = plan_with(field)
    assert [v.mountpoint for v in volumes] == ["/", field]


def test_a_swap_entry_needs_no_mountpoint():
    fstab = "/dev/xvda1 / ext4 defaults 0 1\n/dev/xvda2 none swap sw 0 0\n"
    domain = parse_xen_config(CONFIG, "evil.cfg")
    volumes = source_volumes("evil", domain, parse_fstab(fstab), SIZES)
    assert [v.mountpoint for v in volumes] == ["/", None]


def test_entries_that_do_not_move_are_not_judged():
    """An NFS or tmpfs line is the guest's business: the host never mounts it."""
    fstab = (
        "/dev/xvda1 / ext4 defaults 0 1\n/dev/xvda2 /srv ext4 defaults 0 2\n"
        "nfs:/x /../../mnt nfs defaults 0 0\ntmpfs /run/a\\040b tmpfs defaults 0 0\n"
    )
    domain = parse_xen_config(CONFIG, "evil.cfg")
    assert len(source_volumes("evil", domain, parse_fstab(fstab), SIZES)) == 2


def test_parse_fstab_keeps_each_entry_s_line():
    entries = parse_fstab("# comment\n\n/dev/xvda1 / ext4 defaults 0 1\n  /dev/xvda2 /var ext4\n")
    assert [(e.line, e.text) for e in entries] == [
        (3, "/dev/xvda1 / ext4 defaults 0 1"),
        (4, "  /dev/xvda2 /var ext4"),
    ]


@pytest.mark.parametrize("mountpoint", ["/", "/var", "/srv/a b"])
def test_mountpoint_problem_accepts_normalised_absolute_paths(mountpoint):
    assert mountpoint_problem(mountpoint) is None


# UUID= and LABEL= (issue #11): the tag's value comes from the guest, the label from the
# filesystem on the dom0's LV; neither is trusted.
FILESYSTEMS = {
    "/dev/vg0/evil-root": {"TYPE": "ext4", "UUID": "5ab1e000-0000-4000-8000-0000000000e1"},
    "/dev/vg0/evil-data": {"TYPE": "ext4", "LABEL": "$(reboot)'\";x y"},
}


def test_a_hostile_label_is_matched_and_kept_verbatim():
    """It reaches mkfs as one argument (disk.filesystem quotes it: quote_label_device)."""
    fstab = "/dev/xvda1 / ext4 defaults 0 1\nLABEL=$(reboot)'\";x\\040y /srv ext4 defaults 0 2\n"
    domain = parse_xen_config(CONFIG, "evil.cfg")
    volumes = source_volumes("evil", domain, parse_fstab(fstab), SIZES, FILESYSTEMS)
    assert [(v.mountpoint, v.label) for v in volumes] == [("/", None), ("/srv", "$(reboot)'\";x y")]


@pytest.mark.parametrize(
    "device", ["LABEL=\x1b[2Jx", "UUID=$(reboot)", "LABEL=../../etc", "UUID=\\012"]
)
def test_a_hostile_tag_naming_nothing_is_refused_quoted(device):
    fstab = f"/dev/xvda1 / ext4 defaults 0 1\n/dev/xvda2 /srv ext4 defaults 0 2\n{device} /x ext4\n"
    domain = parse_xen_config(CONFIG, "evil.cfg")
    with pytest.raises(PlanError) as info:
        source_volumes("evil", domain, parse_fstab(fstab), SIZES, FILESYSTEMS)
    assert info.value.field == "fstab"
    assert "line 3 (" in str(info.value)
    assert "\x1b" not in str(info.value) and "\n" not in str(info.value)
