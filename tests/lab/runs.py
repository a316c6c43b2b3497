"""What the lab tests share: deploy.py run as the README says (from inside the lab's
network namespace), its output read, a guest's journal on kvm1, and the lab brought back to
its pristine state when a test needs a guest that an earlier module migrated."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.lab.conftest import LAB_CLI, Ssh
from xen2kvm.journal import CUTOVER_COMPLETE, done
from xen2kvm.lab.config import LabConfig
from xen2kvm.lab.util import in_netns

ROOT = Path(__file__).resolve().parents[2]
LAB_INVENTORY = "inventory/lab.py"
PYINFRA = [sys.executable, "-m", "pyinfra", LAB_INVENTORY, "deploy.py"]
JOURNALS = "/var/lib/xen2kvm/journal"  # the lab's destinations keep the default state_dir


def pyinfra(
    *args: str, timeout: float = 1800, inventory: str | Path = LAB_INVENTORY
) -> subprocess.CompletedProcess[str]:
    """pyinfra from inside the lab's namespace (``xen2kvm lab exec``), as the README says;
    over the lab's inventory, or another (``inventory_with``)."""
    command = [sys.executable, "-m", "pyinfra", str(inventory), "deploy.py"]
    return subprocess.run(
        [*LAB_CLI, "exec", "--", *command, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def text(result: subprocess.CompletedProcess[str]) -> str:
    """pyinfra prints its progress and tables on stderr."""
    return result.stdout + result.stderr


def inventory_with(where: Path, name: str, **keys: object) -> Path:
    """A copy of the lab's inventory in ``where`` whose entry ``name`` (a guest, or a host:
    names are unique across lab.yml's sections) has these keys too (what an operator would
    add to lab.yml); the pyinfra inventory file that reads it."""
    lab = ROOT / "inventory"
    lines = (lab / "lab.yml").read_text().splitlines(keepends=True)
    entry = lines.index(f"  {name}:\n")  # its entry, under guests: or a hosts' section
    added = [f"    {key}: {json.dumps(value)}\n" for key, value in keys.items()]
    (where / "lab.yml").write_text("".join(lines[: entry + 1] + added + lines[entry + 1 :]))
    inventory = where / "lab.py"
    inventory.write_text((lab / "lab.py").read_text())  # it reads lab.yml beside itself
    return inventory


def changed_operations(output: str) -> list[str]:
    """The rows of pyinfra's results table with a change (Success column not '-')."""
    assert "--> Results" in output, "no results table in pyinfra's output"
    rows = []
    in_results = False
    for line in output.splitlines():
        if line.startswith("--> Results"):
            in_results = True
            continue
        fields = line.split()
        is_row = in_results and len(fields) >= 5 and fields[-4].isdigit()
        if is_row and fields[-3] != "-" and not line.strip().startswith("Grand total"):
            rows.append(line.strip())
    return rows


def journal(ssh: Ssh, guest: str, host: str = "kvm1") -> list[dict]:
    """The guest's journal on its destination (empty before its first run)."""
    result = ssh(host, f"cat {JOURNALS}/{guest}.jsonl 2>/dev/null || true")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def journals(ssh: Ssh, host: str = "kvm1") -> dict[str, list[dict]]:
    """Every guest's journal on a destination, by guest."""
    result = ssh(host, f"cd {JOURNALS} 2>/dev/null && grep -H '' -- *.jsonl || true")
    assert result.returncode == 0, result.stderr
    found: dict[str, list[dict]] = {}
    for line in result.stdout.splitlines():
        name, _, text = line.partition(".jsonl:")
        if text.strip():
            found.setdefault(name, []).append(json.loads(text))
    return found


def marks(records: list[dict], step: str) -> list[float]:
    return [r["time"] for r in records if r["step"] == step and r["event"] == "mark"]


def migrated(ssh: Ssh, guest: str) -> bool:
    """The guest's cutover to kvm1 is complete."""
    return done(journal(ssh, guest), CUTOVER_COMPLETE)


def reset_lab() -> None:
    """lab down, lab up: the lab as it was built (about two minutes with cached images)."""
    extra = os.environ.get("XEN2KVM_LAB_UP_ARGS", "").split()
    subprocess.run([*LAB_CLI, "down"], check=True)
    subprocess.run([*LAB_CLI, "up", *extra], check=True)


def untouched(ssh: Ssh, guests: dict[str, str]) -> None:
    """Bring the lab back to its pristine state if any of the guests (name: destination)
    has a journal there (an earlier module, or an earlier session, moved it): the modules
    that need guests not yet moved pay for a reset only when they must."""
    if any(journal(ssh, guest, host) for guest, host in guests.items()):
        reset_lab()


def neighbour_mac(cfg: LabConfig, address: str) -> str:
    """The MAC that answers for ``address`` seen from the lab network's namespace, once a
    connection to its SSH port (made here, and which must succeed) resolved it."""
    code = "import socket,sys; socket.create_connection((sys.argv[1], 22), timeout=5).close()"
    subprocess.run(in_netns(cfg.netns, [sys.executable, "-c", code, address]),
                   capture_output=True, check=True)  # fmt: skip
    out = subprocess.run(in_netns(cfg.netns, ["ip", "-j", "neigh", "show", address]),
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return next((n.get("lladdr", "") for n in json.loads(out or "[]")), "")
