"""The bad-input corpus: every hostile config and argument is one clean error, nothing else.

Two sources, one parametrized test:

- ``tests/data/xen/bad/NNN-what.cfg``: a config whose first line says what the error must
  contain, ``# expect: FRAGMENT`` (both ``inspect`` and ``convert`` refuse it) or
  ``# expect[convert]: FRAGMENT`` (it parses, and ``convert`` refuses it as the migration
  would: ``inspect`` must accept it);
- ``ARGUMENT_CASES`` below: command lines with bad options, paths and special files.

Each case must exit 2 with an empty stdout, one error line on stderr (argparse's usage
lines aside) that contains the fragment, no traceback, and no file written.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from xen2kvm.cli import main
from xen2kvm.xenconfig import MAX_FILE_BYTES

DATA = Path(__file__).resolve().parents[1] / "data" / "xen"
BAD = DATA / "bad"
GOOD = DATA / "xen-tools-xm-kernel.cfg"


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # {good} {cfg} {out} {dir} {huge} are filled in per test
    expect: str
    accepted_by: tuple[tuple[str, ...], ...] = ()  # command lines that must succeed


def _file_case(path: Path) -> Case:
    header = path.read_bytes().split(b"\n", 1)[0].decode()
    tag, _, expect = header.partition(": ")
    if tag == "# expect":
        return Case(path.stem, ("convert", str(path), "-o", "{out}"), expect)
    assert tag == "# expect[convert]", f"{path}: first line must be '# expect: ...'"
    return Case(path.stem, ("convert", str(path), "-o", "{out}"), expect, (("inspect", str(path)),))


FILE_CASES = [_file_case(path) for path in sorted(BAD.glob("*.cfg"))]
# The same configs through ``inspect`` (and ``--json``), where they must fail alike.
INSPECT_CASES = [
    Case(f"inspect-{case.id}", ("inspect", *json, case.argv[1]), case.expect)
    for index, case in enumerate(FILE_CASES)
    if not case.accepted_by
    for json in ([["--json"]] if index % 2 else [[]])
]

A = Case
ARGUMENT_CASES = [
    # the config itself
    A("missing-config", ("convert", "/nonexistent/x.cfg"), "/nonexistent/x.cfg: cannot read"),
    A("missing-config-inspect", ("inspect", "/nonexistent/x.cfg"), "cannot read: No such file"),
    A("config-is-a-directory", ("convert", "{dir}"), "cannot read: Is a directory"),
    A("config-is-a-directory-inspect", ("inspect", "{dir}"), "cannot read: Is a directory"),
    A("config-is-dev-null", ("convert", "/dev/null"), "/dev/null: holds no 'key = value' line"),
    A("config-is-dev-zero", ("inspect", "/dev/zero"), "/dev/zero: larger than 1 MiB"),
    A("config-over-1-mib", ("convert", "{huge}", "-o", "{out}"), "larger than 1 MiB"),
    A("config-over-1-mib-inspect", ("inspect", "--json", "{huge}"), "larger than 1 MiB"),
    A("config-dash", ("inspect", "-"), "-: cannot read: No such file"),
    A("config-with-nul", ("inspect", "a\x00b.cfg"), "cannot read: embedded null byte"),
    A("config-path-not-xml", ("convert", "{odd}"), "which XML cannot carry"),
    A("no-config", ("convert",), "the following arguments are required: CONFIG"),
    A("no-config-inspect", ("inspect", "--json"), "the following arguments are required: CONFIG"),
    A("two-configs", ("convert", "{good}", "{good}"), "unrecognized arguments"),
    A("unknown-option", ("convert", "{good}", "--bogus"), "unrecognized arguments: --bogus"),
    A("unknown-command", ("migrate", "{good}"), "invalid choice: 'migrate'"),
    # -o FILE
    A("output-missing-dir", ("convert", "{good}", "-o", "{dir}/no/x.xml"), "does not exist"),
    A("output-is-a-directory", ("convert", "{good}", "-o", "{dir}"), "is a directory"),
    A("output-is-the-config", ("convert", "{cfg}", "-o", "{cfg}"), "is the Xen config itself"),
    A("output-empty-name", ("convert", "{good}", "-o", ""), "-o: an empty file name"),
    A("output-name-too-long", ("convert", "{good}", "-o", "{dir}/" + "x" * 300), "cannot write"),
    A("output-without-file", ("convert", "{good}", "-o"), "argument -o/--output: expected one"),
    # --memory
    A("memory-100K", ("convert", "{good}", "--memory", "100K"), "'100K' is outside 16M to 16T"),
    A("memory-zero", ("convert", "{good}", "--memory", "0"), "size must be positive"),
    A("memory-15M", ("convert", "{good}", "--memory", "15M"), "'15M' is outside 16M"),
    A("memory-17T", ("convert", "{good}", "--memory", "17T"), "'17T' is outside 16M to 16T"),
    A("memory-1.5K", ("convert", "{good}", "--memory", "1.5K"), "outside 16M to 16T"),
    A("memory-half-mib", ("convert", "{good}", "--memory", "16.5"), "not a whole number of MiB"),
    A("memory-words", ("convert", "{good}", "--memory", "lots"), "not a size: 'lots'"),
    A("memory-nan", ("convert", "{good}", "--memory", "nan"), "not a size: 'nan'"),
    A("memory-exponent", ("convert", "{good}", "--memory", "1e9"), "not a size: '1e9'"),
    A("memory-negative", ("convert", "{good}", "--memory=-1G"), "not a size: '-1G'"),
    A("memory-unit", ("convert", "{good}", "--memory", "2P"), "unknown unit 'P'"),
    A("memory-arabic-digits", ("convert", "{good}", "--memory", "٥١٢"), "not a size"),
    A("memory-5000-digits", ("convert", "{good}", "--memory", "1" + "0" * 5000), "a very long"),
    A("memory-empty", ("convert", "{good}", "--memory", ""), "not a size: ''"),
    # --vcpus
    A("vcpus-zero", ("convert", "{good}", "--vcpus", "0"), "'0' is not a whole number from 1"),
    A("vcpus-4097", ("convert", "{good}", "--vcpus", "4097"), "from 1 to 4096"),
    A("vcpus-negative", ("convert", "{good}", "--vcpus=-1"), "'-1' is not a whole number"),
    A("vcpus-float", ("convert", "{good}", "--vcpus", "1.5"), "'1.5' is not a whole number"),
    A("vcpus-exponent", ("convert", "{good}", "--vcpus", "1e3"), "'1e3' is not a whole number"),
    A("vcpus-arabic-digits", ("convert", "{good}", "--vcpus", "٣"), "is not a whole number"),
    A("vcpus-5000-digits", ("convert", "{good}", "--vcpus", "9" * 5000), "'9999999999"),
    A("vcpus-blank", ("convert", "{good}", "--vcpus", " "), "' ' is not a whole number"),
    # names
    A("name-upper", ("convert", "{good}", "--name", "WWW"), "(e.g. --name www)"),
    A("name-space", ("convert", "{good}", "--name", "a b"), "'a b' is not a domain name"),
    A("name-empty", ("convert", "{good}", "--name", ""), "'' is not a domain name"),
    A("name-dash", ("convert", "{good}", "--name=-rf"), "'-rf' is not a domain name"),
    A("name-newline", ("convert", "{good}", "--name", "web\n"), "'web\\n' is not a domain name"),
    A("name-markup", ("convert", "{good}", "--name", "<x>&"), "'<x>&' is not a domain name"),
    A("name-200", ("convert", "{good}", "--name", "a" * 200), "'aaaaaaaaaaaaaaaaaaaaaaaaa"),
    A("bridge-injection", ("convert", "{good}", "--bridge", "br0;reboot"), "not an interface"),
    A("bridge-empty", ("convert", "{good}", "--bridge", ""), "'' is not an interface name"),
    A("bridge-16", ("convert", "{good}", "--bridge", "b" * 16), "is not an interface name"),
    A("vg-dash", ("convert", "{good}", "--vg=-x"), "'-x' is not a valid LVM name"),
    A("vg-dotdot", ("convert", "{good}", "--vg", ".."), "'..' is not a valid LVM name"),
    A("vg-slash", ("convert", "{good}", "--vg", "a/b"), "'a/b' is not a valid LVM name"),
    A("lv-space", ("convert", "{good}", "--lv", "a b"), "'a b' is not a valid LVM name"),
    A("lv-200", ("convert", "{good}", "--lv", "l" * 200), "is not a valid LVM name"),
    A("arch", ("convert", "{good}", "--arch", "sparc"), "argument --arch: invalid choice"),
    A("virt-type", ("convert", "{good}", "--virt-type", "xen"), "invalid choice: 'xen'"),
    A("force-takes-no-value", ("convert", "{good}", "--force=yes"), "ignored explicit argument"),
]

CASES = FILE_CASES + INSPECT_CASES + ARGUMENT_CASES


def test_the_corpus_is_large_and_covers_both_commands():
    assert len(FILE_CASES) >= 150
    assert len(CASES) >= 300
    assert sum(1 for case in FILE_CASES if case.accepted_by) >= 15
    assert len({case.id for case in CASES}) == len(CASES)


def _fill(argv: tuple[str, ...], paths: dict[str, str]) -> list[str]:
    return [arg.format(**paths) if "{" in arg else arg for arg in argv]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_one_clean_error_and_writes_nothing(case, tmp_path, capsys):
    work = tmp_path / "work"
    work.mkdir()
    cfg = tmp_path / "copy.cfg"
    shutil.copy(GOOD, cfg)
    huge = tmp_path / "huge.cfg"
    huge.write_bytes(b"name = 'web01'\n" + b"#" * MAX_FILE_BYTES + b"\n")
    paths = {"good": str(GOOD), "cfg": str(cfg), "out": str(work / "out.xml")}
    odd = tmp_path / "a\x01b.cfg"
    shutil.copy(GOOD, odd)
    paths |= {"dir": str(work), "huge": str(huge), "odd": str(odd)}
    before = cfg.read_bytes()

    try:
        code = main(_fill(case.argv, paths))
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()

    assert code == 2, f"accepted: {case.argv}\n{err}"
    assert out == ""
    errors = [line for line in err.splitlines() if not line.startswith(("usage:", " "))]
    assert len(errors) == 1, err
    assert re.match(r"xen2kvm( convert| inspect)?: error: ", errors[0]), err
    assert case.expect in err, err
    config = next((arg for arg in case.argv if arg.startswith(str(BAD))), None)
    if config:  # a config's error names the file, then the line
        assert errors[0].startswith(f"xen2kvm: error: {config}: "), err
    assert list(work.iterdir()) == []
    assert cfg.read_bytes() == before
    for argv in case.accepted_by:
        assert main(_fill(argv, paths)) == 0, capsys.readouterr().err
        capsys.readouterr()
