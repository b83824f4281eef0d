"""The HTML report: self-contained, printable, status in words and symbols, everything escaped."""

from __future__ import annotations

import re

from orchestrator.exports.html import render_html
from orchestrator.exports.model import build_model
from tests.unit.test_export_journal import build_campaign

# Anything that would make a browser fetch: src/href/url()/@import/srcset, protocol-relative or absolute.
_RESOURCE = re.compile(r"""(?:src|href|srcset|action|data|poster)\s*=|url\s*\(|@import""", re.IGNORECASE)


def _html(**overrides: dict[str, str]) -> str:
    return render_html(build_model(build_campaign(device_overrides=overrides or None))).decode("utf-8")


def test_the_report_references_no_external_resource() -> None:
    page = _html()
    assert "http://" not in page and "https://" not in page and "//" not in page
    assert not _RESOURCE.search(page)
    assert "<script" not in page.lower() and "<link" not in page.lower() and "<img" not in page.lower()


def test_the_report_has_a_print_stylesheet() -> None:
    page = _html()
    assert "@media print" in page and "@page" in page


def test_every_journal_value_is_escaped() -> None:
    page = _html(
        **{
            "north-icu-bed01": {
                "asset_tag": '<script>alert("x")</script>',
                "ward": 'ICU" onmouseover="alert(1)',
            }
        }
    )
    assert "<script>" not in page and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert 'onmouseover="' not in page and "onmouseover=&quot;" in page


def test_status_is_never_carried_by_colour_alone() -> None:
    page = _html()
    for cls, words in (
        ("o-patched", "\u2714 patched"),
        ("o-failed", "\u2718 failed"),
        ("o-deferred", "\u2016 deferred"),
        ("o-inconclusive", "? inconclusive"),
        ("v-vulnerable", "\u2718 vulnerable"),
        ("v-fixed", "\u2714 fixed"),
    ):
        cells = re.findall(rf'class="{cls}">([^<]*)<', page)
        assert cells and all(words in c for c in cells), cls


def test_the_summary_counts_per_site_and_per_model() -> None:
    page = _html()
    site = re.search(r'<th scope="row">North General</th>((?:<td class="n">\d+</td>)+)', page)
    assert site is not None
    assert re.findall(r"\d+", site.group(1)) == ["1", "1", "1", "0", "0", "3"]
    model = re.search(r'<th scope="row">CMS8000</th>((?:<td class="n">\d+</td>)+)', page)
    assert model is not None and re.findall(r"\d+", model.group(1)) == ["2", "1", "0", "0", "0", "3"]


def test_the_report_carries_campaign_chain_head_and_per_monitor_evidence() -> None:
    records = build_campaign()
    page = render_html(build_model(records)).decode()
    assert records[-1].hash in page and records[0].campaign in page
    assert page.count('<section class="device"') == 6
    assert "monitor-mount-string" in page and "5e" * 32 in page
