"""docs/inventory.md is the schema rendered: every key, and nothing the loader does not check."""

from __future__ import annotations

from pathlib import Path

import pytest

from xen2kvm.inventory_reference import COMMAND, render
from xen2kvm.inventory_schema import SECTIONS

DOC = Path(__file__).resolve().parents[2] / "docs" / "inventory.md"


def test_the_committed_reference_is_what_the_schema_renders():
    if DOC.read_text() != render():
        pytest.fail(f"docs/inventory.md is out of date with the schema: run `{COMMAND}`")


@pytest.mark.parametrize("section", SECTIONS, ids=[s.key for s in SECTIONS])
def test_every_key_is_in_the_reference(section):
    text = render()
    assert f"## `{section.key}:`" in text
    assert all(f"`{spec.key}`" in text for spec in section.fields)


def test_units_are_stated():
    rows = {line.split(" | ")[0]: line for line in render().splitlines() if line.startswith("| `")}
    assert "| MiB |" in rows["| `memory`"]
    assert "| MiB |" in rows["| `boot_size`"]
    assert "| bytes |" in rows["| `grow`"]
    assert "16 MiB to 16 TiB" in rows["| `memory`"]
