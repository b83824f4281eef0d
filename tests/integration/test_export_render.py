"""The HTML report as a person sees it: headless Chromium prints it and takes a screenshot.

Chromium (Debian ``chromium``) and ``pdftotext`` (``poppler-utils``) are in the Makefile's ``deps``; the
test is skipped only when they are absent, with the reason. Chromium is started with networking
features off and every host name resolving to nothing, so the render also proves the page needs no
network: a report that fetched a font or a script would render differently, not silently succeed.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from orchestrator.exports.html import render_html
from orchestrator.exports.model import build_model
from tests.unit.test_export_journal import build_campaign

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PDFTOTEXT = shutil.which("pdftotext")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and PDFTOTEXT), reason="needs Debian packages chromium and poppler-utils (make deps)"
)


def _chromium(tmp: Path, *args: str) -> None:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    assert CHROMIUM is not None
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--no-pdf-header-footer",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            f"--user-data-dir={profile}",
            *args,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def _png_pixels(data: bytes) -> tuple[int, int, bytes]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width, height = 8, b"", 0, 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return width, height, zlib.decompress(idat)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("render") / "report.html"
    path.write_bytes(render_html(build_model(build_campaign())))
    return path


def test_the_printed_report_shows_the_summary_figures(report: Path) -> None:
    pdf = report.with_suffix(".pdf")
    _chromium(report.parent, f"--print-to-pdf={pdf}", report.as_uri())
    text = subprocess.run(
        [str(PDFTOTEXT), "-layout", str(pdf), "-"], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    assert "patch report" in text and "c-2026-11-24-north-south" in text
    rows = {
        name: re.findall(r"\d+", line.split(name, 1)[1])
        for line in text.splitlines()
        for name in ("North General", "South Hospital", "CMS8000", "MN-120")
        if line.strip().startswith(name)
    }
    # patched, deferred, failed, inconclusive, not done, total
    assert rows["North General"] == ["1", "1", "1", "0", "0", "3"]
    assert rows["South Hospital"] == ["1", "0", "1", "1", "0", "3"]
    assert rows["CMS8000"][:6] == ["2", "1", "0", "0", "0", "3"]
    assert rows["MN-120"][:6] == ["0", "0", "1", "0", "0", "1"]
    assert "\u2718 vulnerable" in text and "\u2714 fixed" in text  # status in words, not colour


def test_the_screenshot_is_not_blank(report: Path) -> None:
    png = report.with_suffix(".png")
    _chromium(report.parent, "--window-size=1280,1600", f"--screenshot={png}", report.as_uri())
    width, height, pixels = _png_pixels(png.read_bytes())
    assert (width, height) == (1280, 1600)
    assert len(set(pixels)) > 16  # text, tables and tints: a blank page has two or three byte values
