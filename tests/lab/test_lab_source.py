"""The lab's source side, over real SSH: the Xen dom0, its xl, and the Xen guests."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from tests.lab.conftest import Ssh
from tests.lab.runs import neighbour_mac
from xen2kvm.lab import dom0, fleet, repo
from xen2kvm.lab.config import LabConfig
from xen2kvm.lab.util import in_netns
from xen2kvm.waiting import wait_until

pytestmark = pytest.mark.lab

LAB = fleet.load()
GUESTS = [g.name for g in LAB.guests]
SOURCE_HOSTS = [h.name for h in LAB.hosts if h.kind != "kvm"]
SERVICES = ["sshd", "rsyslogd", "cron", "exim4", "x2k-app"]
XL_HEADER = "Name                                        ID   Mem VCPUs\tState\tTime(s)"


def tcp_answers(cfg: LabConfig, address: str, port: int) -> bool:
    """Does ``address:port`` accept a TCP connection, seen from the lab network?"""
    code = (
        "import socket,sys\n"
        "try:\n socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2)\n"
        "except OSError:\n sys.exit(1)\n"
    )
    cmd = in_netns(cfg.netns, [sys.executable, "-c", code, address, str(port)])
    return subprocess.run(cmd, capture_output=True, check=False).returncode == 0


def http_get(cfg: LabConfig, url: str) -> str:
    code = (
        "import sys, urllib.request\n"
        "print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode(), end='')"
    )
    cmd = in_netns(cfg.netns, [sys.executable, "-c", code, url])
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("host", SOURCE_HOSTS)
def test_host_answers_ssh_with_its_name(ssh: Ssh, host: str) -> None:
    assert ssh(host, "hostname").stdout.strip() == host


def test_no_lab_address_in_host_namespace(lab: LabConfig) -> None:
    out = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True)
    assert "198.51.100." not in out.stdout


def test_xl_list_header_is_xl_s(ssh: Ssh) -> None:
    assert ssh("xen1", "xl list").stdout.splitlines()[0] == XL_HEADER


def test_xl_list_shows_dom0_and_running_guests(ssh: Ssh) -> None:
    names = [line.split()[0] for line in ssh("xen1", "xl list").stdout.splitlines()[1:]]
    assert names[0] == "Domain-0" and set(GUESTS) <= set(names)


def test_xl_list_long_is_json_with_guest_configs(ssh: Ssh) -> None:
    doms = json.loads(ssh("xen1", "xl list -l").stdout)
    memory = {d["config"]["c_info"]["name"]: d["config"]["b_info"]["max_memkb"] for d in doms}
    assert {g: memory.get(g) for g in GUESTS} == {g: 512 * 1024 for g in GUESTS}


def test_xl_create_of_running_guest_fails(ssh: Ssh) -> None:
    proc = ssh("xen1", f"xl create {LAB.guest('mail1').xen_config}")
    assert proc.returncode != 0 and "already exists" in proc.stderr


@pytest.mark.parametrize("guest", GUESTS)
def test_xen_config_and_auto_link(ssh: Ssh, guest: str) -> None:
    """Each config is where the inventory says (mail1.fleet.example's at the default path
    for that name) and names the domain as Xen calls it (mail1)."""
    config = LAB.guest(guest).xen_config
    auto = f"/etc/xen/auto/{config.rsplit('/', 1)[1]}"
    out = ssh("xen1", f"readlink {auto} && cat {config}").stdout
    assert out.startswith(f"{config}\n") and f"mac={LAB.guest(guest).mac}" in out
    assert f"name        = '{guest}'" in out


@pytest.mark.parametrize("guest", GUESTS)
def test_lv_nodes_are_block_devices_of_the_right_size(ssh: Ssh, guest: str) -> None:
    out = ssh("xen1", f"blockdev --getsize64 {dom0.lv_path(guest, 'root')}").stdout
    assert int(out) == 1536 * 1024 * 1024


@pytest.fixture(scope="class")
def web1_shut_down(ssh: Ssh) -> Iterator[None]:
    down = ssh("xen1", "xl shutdown -w web1")
    assert down.returncode == 0, down.stderr
    yield
    if "web1" not in ssh("xen1", "xl list").stdout:
        ssh("xen1", "xl create -q /etc/xen/web1.cfg")


@pytest.mark.usefixtures("web1_shut_down")
class TestShutdownAndCreate:
    """``xl shutdown -w`` a guest, look at it from the dom0, ``xl create`` it again."""

    GUEST = "web1"

    def test_gone_from_xl_list(self, ssh: Ssh) -> None:
        assert self.GUEST not in ssh("xen1", "xl list").stdout

    @pytest.mark.parametrize("address", LAB.guest("web1").ips)
    def test_addresses_stop_answering(self, lab: LabConfig, address: str) -> None:
        assert not tcp_answers(lab, address, 22)

    def test_lvs_mount_read_only_in_dom0(self, ssh: Ssh) -> None:
        root, var = dom0.lv_path(self.GUEST, "root"), dom0.lv_path(self.GUEST, "var")
        out = ssh(
            "xen1",
            f"mkdir -p /mnt/t && mount -o ro {root} /mnt/t && mount -o ro {var} /mnt/t/var && "
            "findmnt -no OPTIONS /mnt/t/var && cat /mnt/t/etc/hostname; "
            "umount /mnt/t/var; umount /mnt/t",
        ).stdout.split()
        assert out[0].startswith("ro,") and out[1] == self.GUEST

    def test_lvs_unmounted_again(self, ssh: Ssh) -> None:
        assert ssh("xen1", "findmnt /mnt/t").returncode != 0

    def test_create_while_lv_mounted_in_dom0_fails(self, ssh: Ssh) -> None:
        root = dom0.lv_path(self.GUEST, "root")
        proc = ssh(
            "xen1",
            f"mount -o ro {root} /mnt/t && xl create /etc/xen/{self.GUEST}.cfg; "
            "rc=$?; umount /mnt/t; exit $rc",
        )
        assert proc.returncode != 0 and "mounted in the dom0" in proc.stderr

    def test_create_brings_it_back(self, lab: LabConfig, ssh: Ssh) -> None:
        up = ssh("xen1", f"xl create /etc/xen/{self.GUEST}.cfg")
        assert up.returncode == 0, up.stderr
        assert wait_until(lambda: ssh(self.GUEST, "true").returncode == 0, 60)


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("guest", GUESTS)
def test_guest_service_runs(ssh: Ssh, guest: str, service: str) -> None:
    assert ssh(guest, f"pgrep -x {service}").returncode == 0


@pytest.mark.parametrize("guest", GUESTS)
def test_app_answers_on_8080_with_its_name(lab: LabConfig, guest: str) -> None:
    assert http_get(lab, f"http://{LAB.guest(guest).address}:8080/") == f"{guest}\n"


@pytest.mark.parametrize("guest", GUESTS)
def test_exim_delivers_local_mail_to_root(ssh: Ssh, guest: str) -> None:
    subject = f"lab-test-{uuid.uuid4().hex[:8]}"
    ssh(guest, f"echo body | mail -s {subject} root")
    assert wait_until(
        lambda: ssh(guest, f"grep -q 'Subject: {subject}' /var/mail/mail").returncode == 0, 60
    )


@pytest.mark.parametrize("guest", GUESTS)
def test_rsyslog_writes_var_log_syslog(ssh: Ssh, guest: str) -> None:
    marker = f"lab-test-{uuid.uuid4().hex[:8]}"
    ssh(guest, f"logger -t labtest {marker}")
    assert wait_until(lambda: ssh(guest, f"grep -q {marker} /var/log/syslog").returncode == 0, 60)


@pytest.mark.parametrize("guest", GUESTS)
def test_app_heartbeat_in_syslog(ssh: Ssh, guest: str) -> None:
    assert wait_until(
        lambda: ssh(guest, "grep -q 'x2k-app.*heartbeat' /var/log/syslog").returncode == 0, 60
    )


@pytest.mark.parametrize("guest", GUESTS)
def test_userland_arch(ssh: Ssh, guest: str) -> None:
    assert ssh(guest, "dpkg --print-architecture").stdout.strip() == LAB.guest(guest).arch


@pytest.mark.parametrize("guest", GUESTS)
def test_fstab_names_xen_vdevs(ssh: Ssh, guest: str) -> None:
    fstab = ssh(guest, "cat /etc/fstab").stdout
    assert "/dev/xvda2 / ext4 errors=remount-ro 0 1" in fstab and "/dev/xvda1 none swap sw" in fstab


def test_mail1_names_var_by_label_and_srv_by_uuid_which_its_lvs_carry(ssh: Ssh) -> None:
    """Issue #11: the UUID= and LABEL= entries of mail1's fstab name its Xen LVs' own
    filesystems, as blkid reads them on the dom0 (what the plan matches them with)."""
    mail1 = LAB.guest("mail1")
    disks = {disk.role: disk for disk in mail1.disks}
    fstab = ssh("mail1", "cat /etc/fstab").stdout
    assert f"LABEL={mail1.fs_label(disks['var'])} /var ext4 defaults 0 2" in fstab
    assert f"UUID={mail1.fs_uuid(disks['srv'])} /srv ext4 defaults 0 2" in fstab
    for role, key, value in (
        ("var", "LABEL", mail1.fs_label(disks["var"])),
        ("srv", "UUID", mail1.fs_uuid(disks["srv"])),
    ):
        found = ssh("xen1", f"blkid -o value -s {key} {dom0.lv_path('mail1', role)}").stdout
        assert found.strip() == value, role


@pytest.mark.parametrize("guest", GUESTS)
def test_persistent_net_rule_pins_xen_mac(ssh: Ssh, guest: str) -> None:
    rules = ssh(guest, "cat /etc/udev/rules.d/70-persistent-net.rules").stdout
    assert f'ATTR{{address}}=="{LAB.guest(guest).mac}"' in rules


@pytest.mark.parametrize("guest", GUESTS)
def test_eth0_has_the_xen_mac(ssh: Ssh, guest: str) -> None:
    assert ssh(guest, "cat /sys/class/net/eth0/address").stdout.strip() == LAB.guest(guest).mac


def test_web1_has_a_second_vif_on_the_backend_network(lab: LabConfig, ssh: Ssh) -> None:
    """Two vifs on two Xen bridges (issue #11): web1's eth1, with its own Xen MAC, holds
    its backend address, reached over br2 only."""
    web1 = LAB.guest("web1")
    (backend,) = web1.backend_ips
    shown = ssh("web1", f"cat /sys/class/net/eth1/address; ip -o -4 addr show to {backend}")
    assert shown.stdout.split()[0] == web1.backend_mac
    assert " eth1 " in shown.stdout.splitlines()[1]
    assert neighbour_mac(lab, backend) == web1.backend_mac
    config = ssh("xen1", f"cat {web1.xen_config}").stdout
    assert f"mac={web1.backend_mac},bridge=xenbr1,ip={backend}" in config


@pytest.mark.parametrize("guest", GUESTS)
def test_getty_on_hvc0(ssh: Ssh, guest: str) -> None:
    if LAB.guest(guest).init == "sysvinit":
        check = "grep -q '^co:2345:respawn:/sbin/getty hvc0' /etc/inittab"
    else:
        check = "test -L /etc/systemd/system/getty.target.wants/serial-getty@hvc0.service"
    assert ssh(guest, check).returncode == 0


@pytest.mark.parametrize("guest", GUESTS)
def test_interfaces_bring_up_all_addresses(ssh: Ssh, guest: str) -> None:
    text = ssh(guest, "cat /etc/network/interfaces").stdout
    spec = LAB.guest(guest)
    assert all(f"address {ip}" in text for ip in spec.ips) and "gateway 198.51.100.1" in text


@pytest.mark.parametrize("guest", GUESTS)
def test_guest_runs_its_debian_release(ssh: Ssh, guest: str) -> None:
    """mail1 runs Debian 13 (trixie), the others Debian 12 (issue #11: fleet.SUITES)."""
    said = ssh(guest, ". /etc/os-release && echo $VERSION_CODENAME").stdout.strip()
    assert said == LAB.guest(guest).suite


@pytest.mark.parametrize("guest", GUESTS)
def test_no_kernel_bootloader_or_lvm_yet(ssh: Ssh, guest: str) -> None:
    assert (
        ssh(guest, "dpkg -l 'linux-image-*' grub-pc lvm2 2>/dev/null | grep -q ^ii").returncode != 0
    )


@pytest.mark.parametrize("guest", GUESTS)
def test_apt_resolves_prepare_packages_from_lab_repo(ssh: Ssh, guest: str) -> None:
    lab_guest = LAB.guest(guest)
    packages = " ".join(repo.repo_packages(lab_guest.suite, lab_guest.arch))
    proc = ssh(guest, f"apt-get -q update && apt-get install -s {packages}")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_32_bit_guest_reports_i686_machine(ssh: Ssh) -> None:
    assert ssh("legacy1", "uname -m").stdout.strip() == "i686"
