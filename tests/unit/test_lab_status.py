"""``xen2kvm lab status`` prints its hosts as one table, the KVM host among them."""

from __future__ import annotations

from xen2kvm.lab.cli import status_lines

STATUS = {
    "prefix": "x2k",
    "root": "/var/tmp/xen2kvm-lab",
    "network": True,
    "apt_repo": 101,
    "xen_controller": None,
    "hosts": {
        "xen1": {"kind": "xen", "address": "198.51.100.10", "running": True, "pid": 11},
        "web1": {
            "kind": "guest",
            "address": "198.51.100.101",
            "running": True,
            "pid": 12,
            "domid": 3,
        },
        "mail1": {"kind": "guest", "address": "198.51.100.103", "running": False, "pid": None},
    },
    "kvm": {
        "kvm1": {
            "address": "198.51.100.20",
            "qemu_pid": 13,
            "running": True,
            "image": "/x/kvm1.qcow2",
            "image_built": True,
            "serial_log": "/x/serial.log",
            "ssh": True,
        },
        "outer_libvirt": {
            "libvirtd_pid": 14,
            "uri": "qemu+tcp://198.51.100.1/system",
            "domains": ["web1"],
            "loops": {},
        },
    },
}


def test_every_host_is_a_row_of_one_table():
    lines = status_lines(STATUS, "x2k-net")
    header = next(n for n, line in enumerate(lines) if line.split()[:2] == ["HOST", "KIND"])
    rows = [line.split()[:3] for line in lines[header + 1 :]]
    assert rows == [
        ["xen1", "xen", "198.51.100.10"],
        ["web1", "guest", "198.51.100.101"],
        ["mail1", "guest", "198.51.100.103"],
        ["kvm1", "kvm", "198.51.100.20"],
    ]
    assert lines[-1].endswith("running, pid 13, ssh answers")
    assert "running, pid 12, domid 3" in lines[header + 2]
    assert "not running" in lines[header + 3]


def test_no_raw_python_values_are_printed():
    text = "\n".join(status_lines(STATUS, "x2k-net"))
    assert "{" not in text and "'" not in text
    assert "libvirtd  running, pid 14 (qemu+tcp://198.51.100.1/system; domains: web1)" in text
    assert "xen ctl   not running" in text


def test_without_the_kvm_side_it_says_so():
    status = {**STATUS, "kvm": "xen2kvm.lab.kvmhost not there yet"}
    lines = status_lines(status, "x2k-net")
    assert lines[-1] == "  kvm side: xen2kvm.lab.kvmhost not there yet"
    assert not any("kvm1" in line for line in lines)
