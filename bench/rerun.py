"""Benchmark: a second run over a finished wave, on the lab.

    xen2kvm lab exec -- python bench/rerun.py [--wave 1]

Runs the deploy over the wave once (not timed: it finishes whatever is due, so the wave
is migrated), then again, timed, and counts the operations that changed something in
that second run (pyinfra's results table): a finished wave must give zero. Ends with one
line ``bench rerun: wave=N seconds=S changes=C``. Not part of CI.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.lab.runs import changed_operations  # noqa: E402


def deploy(wave: int) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "pyinfra", "-y", "inventory/lab.py", "deploy.py",
         "--limit", f"wave{wave}"],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    if result.returncode != 0:
        sys.exit(f"the deploy of wave {wave} failed:\n{output[-4000:]}")
    return output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wave", type=int, default=1)
    args = parser.parse_args()
    deploy(args.wave)
    started = time.perf_counter()
    output = deploy(args.wave)
    seconds = time.perf_counter() - started
    changed = changed_operations(output)
    for row in changed:
        print(f"changed: {row}")
    print(f"bench rerun: wave={args.wave} seconds={seconds:.1f} changes={len(changed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
