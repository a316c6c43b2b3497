"""The ``xen2kvm`` command line: ``inspect``, ``convert``, ``plan``, ``report``, ``status``
and ``lab``.

Works with no Xen and no libvirt daemon present: Xen configs are parsed by our own
parser (libvirt's ``virsh domxml-from-native`` needs a live libxl driver on a dom0).
Migrations are not run from here but by pyinfra (``pyinfra INVENTORY deploy.py``).

Every error the operator can act on is one line on stderr,
``xen2kvm: error: FILE: line N: what is wrong (the fix)``, and exit status 2; nothing is
written then. Warnings (``xen2kvm: warning: ...``) go to stderr too.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__
from .errors import Xen2KvmError, XenConfigError

DESCRIPTION = """\
Inspect Xen domU configs and convert them to libvirt domain XML, show what a migration
derives from the inventory, report on and watch migrations.

Migrations themselves are run by pyinfra, from a checkout of xen2kvm:

  pyinfra INVENTORY deploy.py            plan, copy and cut over, wave by wave

xen2kvm only reads Xen configs (xm or xl syntax, never executed), the inventory and the
journals (over SSH, as the deploy connects); it changes no host (the lab subcommand aside).
"""

EPILOG = """\
exit status: 0 on success, 2 on any error (one line on stderr, nothing written).
Run 'xen2kvm COMMAND --help' for a command's options.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xen2kvm",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    from . import cli_convert, cli_inspect, cli_plan, cli_report, cli_status
    from .lab import cli as lab_cli

    cli_inspect.add_parser(sub)
    cli_convert.add_parser(sub)
    cli_plan.add_parser(sub)
    cli_report.add_parser(sub)
    cli_status.add_parser(sub)
    lab_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Xen2KvmError as exc:
        text = exc.located if isinstance(exc, XenConfigError) else str(exc)
        print(f"xen2kvm: error: {text}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``xen2kvm convert x.cfg | head``): not an error of ours.
        # Point stdout at /dev/null so that the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
