"""The ``xen2kvm`` command line: ``inspect``, ``convert`` and ``lab``.

Works with no Xen and no libvirt daemon present: Xen configs are parsed by our own
parser (libvirt's ``virsh domxml-from-native`` needs a live libxl driver on a dom0).
"""

from __future__ import annotations

import argparse
import sys

from .errors import Xen2KvmError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xen2kvm", description="Move Xen domUs to KVM/libvirt, wave by wave."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    from . import cli_convert, cli_inspect
    from .lab import cli as lab_cli

    cli_inspect.add_parser(sub)
    cli_convert.add_parser(sub)
    lab_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Xen2KvmError as exc:
        print(f"xen2kvm: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
