"""The lab reads lab.yml through the deploy's own loader (no lab needed for these)."""

from __future__ import annotations

from pathlib import Path

import pytest

from xen2kvm.errors import InventoryError
from xen2kvm.inventory import load_fleet
from xen2kvm.lab import dom0, fleet, guestfiles
from xen2kvm.planner import nic_bridges
from xen2kvm.xenconfig import parse_xen_config

LAB_YML = Path(__file__).resolve().parents[2] / "inventory" / "lab.yml"

# repr(guest) is hashed into the guest images' cache stamp: the form it had before the
# lab read lab.yml through load_fleet, so no cached image is rebuilt for nothing.
WEB1 = (
    "Guest(name='web1', address='198.51.100.101', "
    "ips=('198.51.100.101', '198.51.100.111', '198.18.0.101'), "
    "arch='amd64', xen_host='xen1', disks=(Disk(role='root', vdev='xvda2', size_mib=1536, "
    "mountpoint='/'), Disk(role='var', vdev='xvda3', size_mib=512, mountpoint='/var'), "
    "Disk(role='swap', vdev='xvda1', size_mib=128, mountpoint=None)))"
)


def test_guests_are_the_fleet_files_guests_with_the_labs_disks():
    lab = fleet.load(LAB_YML)
    assert lab.fleet == load_fleet(LAB_YML)
    assert [g.inventory_name for g in lab.guests] == list(lab.fleet.guests)
    for guest in lab.guests:
        assert guest.fleet == lab.fleet.guests[guest.inventory_name]
        assert guest.disks == fleet.guest_disks(guest.name)


def test_a_guest_named_by_fqdn_is_its_xen_domain_s_short_name_in_the_lab():
    """Issue #11: lab.yml names mail1 by FQDN and sets no xen_domain; the lab's dom0 keeps
    its config at the default path and calls the domain mail1 there, as xen-tools did."""
    lab = fleet.load(LAB_YML)
    mail1 = lab.guest("mail1.fleet.example")
    assert lab.guest("mail1") is mail1
    assert (mail1.name, mail1.inventory_name) == ("mail1", "mail1.fleet.example")
    assert mail1.fleet.xen_domain is None
    assert mail1.xen_config == "/etc/xen/mail1.fleet.example.cfg"
    assert "name        = 'mail1'" in dom0.xen_config(mail1)
    assert lab.host("mail1.fleet.example") is lab.host("mail1")


def test_the_image_stamp_of_a_guest_is_unchanged():
    assert repr(fleet.load(LAB_YML).guest("web1")) == WEB1
    assert "rehome_to" not in repr(fleet.load(LAB_YML).guest("legacy2"))


def test_what_the_lab_builds_from_a_guest():
    lab = fleet.load(LAB_YML)
    legacy2, mail1 = lab.guest("legacy2"), lab.guest("mail1")
    assert (legacy2.arch, legacy2.init, legacy2.rehome_to) == ("i386", "sysvinit", "xen2")
    assert mail1.extra_ips == ("198.51.100.113",)
    assert mail1.mac.startswith("00:16:3e:")
    assert [d.role for d in mail1.disks] == ["root", "var", "swap", "srv"]
    assert len({mail1, legacy2}) == 2


def test_hosts_are_the_dom0s_the_kvm_hosts_and_the_guests_in_that_order():
    lab = fleet.load(LAB_YML)
    assert [(h.name, h.kind) for h in lab.hosts][:3] == [
        ("xen1", "xen"),
        ("xen2", "xen"),
        ("kvm1", "kvm"),
    ]
    assert lab.host("kvm1").address == lab.fleet.kvm_hosts["kvm1"].address
    assert [h.name for h in lab.xen_hosts] == ["xen1", "xen2"]
    with pytest.raises(KeyError, match="known: xen1, xen2, kvm1"):
        lab.host("nowhere")


def test_a_bad_lab_file_is_refused_like_any_fleet_file(tmp_path, monkeypatch):
    bad = tmp_path / "lab.yml"
    bad.write_text(LAB_YML.read_text().replace("198.51.100.20", "198.51.100.300"))
    monkeypatch.setenv("XEN2KVM_LAB_INVENTORY", str(bad))
    with pytest.raises(InventoryError, match=r"kvm1: address: not an IP address"):
        fleet.load()


def test_the_labs_own_network_settings_agree_with_lab_yml():
    """The lab's network (config.py) and its KVM VM (vmimage.py) are what lab.yml says."""
    import ipaddress

    from xen2kvm.lab import config, vmimage

    lab = fleet.load(LAB_YML)
    subnet = ipaddress.ip_network(config.LAB_SUBNET)
    assert all(ipaddress.ip_address(h.address) in subnet for h in lab.hosts)
    assert all(g.gateway == config.LAB_GATEWAY for g in lab.fleet.guests.values())
    assert lab.host("kvm1").address == vmimage.KVM_ADDRESS


def test_the_migration_network_joins_the_dom0s_and_kvm1_only():
    """Issue #11: lab.yml sets a migration_address on every dom0 and on kvm1, all on the
    migration network's own subnet (apart from the lab network's), and kvm1's image puts
    its address on eth1, the NIC on that bridge; no guest is there."""
    import ipaddress

    from xen2kvm.lab import config, vmimage

    lab = fleet.load(LAB_YML)
    net = ipaddress.ip_network(
        f"{vmimage.KVM_MIGRATION_ADDRESS}/{config.MIGRATION_PREFIXLEN}", strict=False
    )
    assert not net.overlaps(ipaddress.ip_network(config.LAB_SUBNET))
    on_it = {h.name: h.migration_address for h in lab.hosts if h.migration_address}
    assert set(on_it) == {"xen1", "xen2", "kvm1"}
    assert all(ipaddress.ip_address(a) in net for a in on_it.values())
    assert on_it["kvm1"] == vmimage.KVM_MIGRATION_ADDRESS
    interfaces = vmimage._file("interfaces")
    eth1 = interfaces.split("iface eth1 inet static", 1)[1]
    assert f"address {vmimage.KVM_MIGRATION_ADDRESS}/{config.MIGRATION_PREFIXLEN}" in eth1


def test_mail1_s_fstab_names_var_by_label_and_srv_by_uuid():
    """Issue #11: the lab migrates a guest whose fstab uses LABEL= and UUID=; the labels
    and UUIDs are the images' own (set by mkfs at build time), stable per guest and role."""
    mail1 = fleet.load(LAB_YML).guest("mail1")
    srv_uuid = fleet.fs_uuid("mail1", "srv")
    assert guestfiles.fstab(mail1).splitlines()[2:] == [
        "/dev/xvda2 / ext4 errors=remount-ro 0 1",
        f"UUID={srv_uuid} /srv ext4 defaults 0 2",
        "LABEL=mail1-var /var ext4 defaults 0 2",
        "/dev/xvda1 none swap sw 0 0",
        "proc /proc proc defaults 0 0",
    ]
    assert srv_uuid == fleet.fs_uuid("mail1", "srv") != fleet.fs_uuid("web1", "srv")
    assert "fstab_by='UUID'" in repr(mail1)  # in the image's cache stamp


def test_the_other_guests_fstabs_name_xen_devices():
    for guest in fleet.load(LAB_YML).guests:
        if guest.name != "mail1":
            assert "LABEL=" not in guestfiles.fstab(guest)
            assert "UUID=" not in guestfiles.fstab(guest)


def test_web1_has_two_vifs_on_two_xen_bridges_that_map_to_two_kvm_bridges():
    """Issue #11: a guest with two vifs on two Xen bridges. Its config, as the tool reads
    it, and the plan: each NIC keeps its vif's MAC and joins the bridge lab.yml maps its
    Xen bridge to; its backend address is on its second NIC, in the guest and on Xen."""
    lab = fleet.load(LAB_YML)
    web1 = lab.guest("web1")
    domain = parse_xen_config(dom0.xen_config(web1))
    assert [(v.mac, v.bridge, v.ip) for v in domain.vifs] == [
        (web1.mac, "xenbr0", ("198.51.100.101", "198.51.100.111")),
        (web1.backend_mac, "xenbr1", ("198.18.0.101",)),
    ]
    kvm = lab.fleet.kvm_hosts["kvm1"]
    assert nic_bridges("web1", kvm, domain, 2) == ["br0", "br2"]
    assert web1.extra_ips == ("198.51.100.111",) and web1.backend_ips == ("198.18.0.101",)
    assert "auto eth1\niface eth1 inet static\n    address 198.18.0.101\n" in (
        guestfiles.interfaces(web1)
    )
    assert f'ATTR{{address}}=="{web1.backend_mac}"' in guestfiles.persistent_net_rules(web1)
    # The others keep one vif.
    assert len(parse_xen_config(dom0.xen_config(lab.guest("legacy1"))).vifs) == 1


@pytest.mark.parametrize(
    ("guest", "suite"),
    [("web1", "bookworm"), ("legacy1", "bullseye"), ("mail1", "trixie"), ("legacy2", "bullseye")],
)
def test_the_lab_runs_debian_11_12_and_13_guests(guest, suite):
    """Issue #11: a production-shaped lab holds Debian 11, 12 and 13 guests (lab-only:
    lab.yml's schema has no such key)."""
    assert fleet.load(LAB_YML).guest(guest).suite == suite


def test_a_lab_guest_on_i386_has_a_suite_with_an_i386_kernel(monkeypatch):
    monkeypatch.setitem(fleet.SUITES, "legacy1", "trixie")
    with pytest.raises(ValueError, match="legacy1: trixie i386 has no kernel"):
        fleet.load(LAB_YML).guest("legacy1").suite  # noqa: B018
