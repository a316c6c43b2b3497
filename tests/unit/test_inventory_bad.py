"""Hostile and broken fleet files: one clean InventoryError each, naming what is wrong.

Each file in ``tests/data/fleets/bad/`` holds one mistake and says, in its header, the
problems it must give (``# expect: HOST: FIELD: words of the message``), and often why
(``# why: ...``). Exactly those problems, no other, and no exception but InventoryError:
no traceback, no cascade, no wrong accept.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from xen2kvm.errors import InventoryError
from xen2kvm.inventory import load_fleet
from xen2kvm.inventory_yaml import MAX_BYTES

BAD = Path(__file__).resolve().parents[1] / "data" / "fleets" / "bad"
CASES = sorted(BAD.glob("*.yml"))


def _expected(path: Path) -> list[tuple[str, str, str]]:
    expects = []
    for line in path.read_bytes().decode("utf-8", "replace").splitlines():
        if not line.startswith("#"):
            break
        if line.startswith("# expect: "):
            host, field, words = line.removeprefix("# expect: ").split(": ", 2)
            expects.append((host, field, words))
    return expects


def test_the_corpus_is_large_and_every_case_says_what_it_expects():
    assert len(CASES) >= 100
    assert all(_expected(path) for path in CASES), [p.name for p in CASES if not _expected(p)]


@pytest.mark.parametrize("path", CASES, ids=[path.stem for path in CASES])
def test_a_bad_fleet_gives_exactly_its_problems(path):
    with pytest.raises(InventoryError) as info:
        load_fleet(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    expected = _expected(path)
    got = info.value.problems
    assert len(got) == len(expected), got
    for (host, field, words), (got_host, got_field, got_message) in zip(
        sorted(expected), sorted(got), strict=True
    ):
        assert (got_host, got_field) == (host, field), got
        assert words in got_message, got
    assert all(len(line) < 1000 for line in message.splitlines()), "a message quotes too much"


def test_a_file_larger_than_the_limit_is_refused_unread(tmp_path):
    path = tmp_path / "huge.yml"
    path.write_bytes(b"# padding\n" * (MAX_BYTES // 10 + 1))
    with pytest.raises(InventoryError) as info:
        load_fleet(path)
    assert info.value.problems == [("-", "file", info.value.problems[0][2])]
    assert "larger than 4 MiB" in info.value.problems[0][2]


def test_a_directory_is_not_a_fleet_file(tmp_path):
    with pytest.raises(InventoryError, match="cannot read"):
        load_fleet(tmp_path)


def test_more_hosts_than_the_limit_is_one_message():
    raw = {"guests": {f"g{n}": {} for n in range(10_001)}}
    from xen2kvm.inventory import parse_fleet

    with pytest.raises(InventoryError) as info:
        parse_fleet(raw, "many.yml")
    assert info.value.problems == [
        ("-", "guests", "10001 entries: at most 10000 (split the fleet into several files)")
    ]


def test_a_long_list_of_problems_is_cut():
    raw = {"guests": {f"g{n}": {"colour": "blue"} for n in range(300)}}
    from xen2kvm.inventory import parse_fleet

    with pytest.raises(InventoryError) as info:
        parse_fleet(raw, "many.yml")
    assert len(info.value.problems) == 101
    assert info.value.problems[-1][2].endswith("more problem(s), not listed")
