"""The fleet file's reference (``docs/inventory.md``), rendered from the schema's tables.

Why generated: the tables in ``inventory_schema`` are what the loader checks, so a
reference written from them cannot say a key, unit or default the loader does not
have. A unit test fails when the committed file differs; regenerate it with::

    python -m xen2kvm.inventory_reference > docs/inventory.md
"""

from __future__ import annotations

import sys
from typing import Any

from .inventory import MAX_HOSTS, MAX_PROBLEMS
from .inventory_check import REQUIRED, Derived, Field, Section
from .inventory_fleet import FLEET_CHECKS, NAMES_ONCE
from .inventory_schema import DEFAULTS, SECTIONS
from .inventory_yaml import MAX_BYTES, MAX_DEPTH, MAX_NODES

COMMAND = "python -m xen2kvm.inventory_reference > docs/inventory.md"

INTRO = f"""\
# The fleet inventory

<!-- Generated from xen2kvm/inventory_schema.py: do not edit; run `{COMMAND}`. -->

The fleet is one YAML file (`inventory/prod.yml` is a documented example, `inventory/lab.yml`
the lab's) with four sections: `defaults`, `xen_hosts`, `kvm_hosts` and `guests`. Each host
is an entry `name: {{key: value, ...}}`; names match `^[a-z0-9][a-z0-9.-]*$` (at most 253
characters, each dot-separated part at most 63). `pyinfra inventory/prod.py debug-inventory`
checks it: every problem is listed at once, as `host: key: what is wrong`, and nothing runs
until the file is right. One mistake gives one message: a host with a bad key is still known
to the guests that name it, and checks that need a bad key are not made.

**Units.** Sizes are binary, as LVM reads them: `512M` is 512 MiB, `4G` is 4 GiB, `1.5G`
works; the units are K, M, G, T (also KiB, MB...). A bare number is in the unit the key
states below: **MiB** for `memory` and `boot_size`, **bytes** for `grow`.

**Defaults.** A key marked *from `defaults:`* may also stand in `defaults:`, for every entry
that does not set it itself; a value an entry sets replaces the default whole (lists and
mappings are not merged). A bad default is named on each entry that takes it, with
`(from defaults:)`. `null` (`~`) means *none*: no value where the default is none, nothing
for `macs`, `services`, `grow` and `mkfs_options`; for other keys it is an error. YAML
anchors and merge keys (`<<: *common`) may be used.

**Limits.** A fleet file is at most {MAX_BYTES // 1024 // 1024} MiB, nested at most \
{MAX_DEPTH} deep, at most {MAX_NODES} values once aliases are expanded, and UTF-8; a section \
holds at most {MAX_HOSTS} hosts; the first {MAX_PROBLEMS} problems are listed. Text holds no \
control characters (newlines, tabs) and is at most 4096 characters unless a key says less.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list):
        return f"`[{', '.join(map(str, value))}]`"
    if isinstance(value, dict):
        return "`{}`" if not value else f"`{value}`"
    return f"`{value}`"


def _default(spec: Field) -> str:
    if spec.default is REQUIRED:
        return "**required**"
    text = spec.default.text if isinstance(spec.default, Derived) else _value(spec.default)
    return f"from `defaults:`, else {text}" if spec.from_defaults else text


def _type(spec: Field) -> str:
    kind = spec.kind
    text = kind.name + (f" ({kind.limits})" if kind.limits else "")
    if spec.refers_to:
        text += f", of `{spec.refers_to}`"
    return text


def _section(section: Section) -> list[str]:
    lines = [f"## `{section.key}:`", "", section.meaning, ""]
    lines += ["| key | type | unit | default | meaning |", "| --- | --- | --- | --- | --- |"]
    for spec in section.fields:
        cells = (f"`{spec.key}`", _type(spec), spec.kind.unit, _default(spec), spec.meaning)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if section.rules:
        lines += ["", "Checks across keys (each reported on the key named first):", ""]
        lines += [f"- `{rule.field}`: {rule.meaning}" for rule in section.rules]
    return [*lines, ""]


def render() -> str:
    """The whole reference, as Markdown."""
    lines = [INTRO]
    for section in SECTIONS:
        if section is DEFAULTS:
            lines += [
                "## `defaults:`",
                "",
                section.meaning + " The keys it takes, each described under `guests:` "
                "(`ssh_*` also under the hosts):",
                "",
                ", ".join(f"`{spec.key}`" for spec in section.fields) + ".",
                "",
            ]
        else:
            lines += _section(section)
    lines += ["## Across the fleet", "", f"- {NAMES_ONCE}"]
    lines += [f"- {rule}" for rule, _items in FLEET_CHECKS]
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
