"""The HTML report as a browser shows it: headless Chromium renders the page from real
journal samples; its screenshot is not blank and its DOM has each guest's row and bars."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from xen2kvm import report

DATA = Path(__file__).resolve().parents[1] / "data" / "journals"
NOW = 1796114840.0
GUESTS = {"web1": "kvm1", "legacy1": "kvm1", "mail1": "kvm1", "legacy2": "xen2", "db9": "kvm1"}
CHROMIUM = shutil.which("chromium")

if CHROMIUM is None and os.environ.get("CI"):
    pytest.fail("chromium is not installed (./dev installs it: APT_PACKAGES)", pytrace=False)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed: apt-get install chromium (./dev does)"
)


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1400,900",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    reports = []
    for guest, destination in GUESTS.items():
        path = DATA / f"{guest}.jsonl"
        records = report.parse_journal(path.read_text(), guest) if path.exists() else []
        reports.append(report.guest_report(guest, destination, records))
    html = tmp_path_factory.mktemp("report") / "report.html"
    html.write_text(report.render("report.html.j2", reports, NOW, "wave 1"))
    return html


def test_the_screenshot_is_not_blank(page, tmp_path):
    png = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={png}", page.as_uri())
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000, "a blank 1400x900 page compresses to a few kB"


@pytest.fixture(scope="module")
def dom(page, tmp_path_factory) -> str:
    return chromium(tmp_path_factory.mktemp("dom"), "--dump-dom", page.as_uri()).stdout


@pytest.mark.parametrize("guest", GUESTS)
def test_each_guest_has_its_row_in_the_rendered_dom(dom, guest):
    row = re.search(rf'<g class="row" id="row-{guest}" data-guest="{guest}">(.*?)</g>', dom, re.S)
    assert row is not None, f"no timeline row for {guest}"
    bars = re.findall(r'<rect class="bar ', row.group(1))
    assert bool(bars) == (guest != "db9"), "bars for every guest that started, none for db9"
