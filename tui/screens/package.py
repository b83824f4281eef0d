"""Package: the trust report before anything starts. A refused package says why, in plain words, and
the campaign cannot be started from this window.

The report is drawn from ``VerificationReport.to_dict()`` (signers, what counted, expiry, hashes,
content scan): the layout follows the dictionary, so a check the trust engineer adds shows up here
without a TUI change.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Static

from tui.session import ReportLike

# Keys shown first, in this order; the rest follow as the report has them.
FIRST_KEYS = ("accepted", "reason", "message", "package", "package_name", "sha256", "size", "manifest",
              "manifest_sha256", "target_version", "models", "from_versions", "expires", "signers",
              "signatures", "threshold", "content_scan", "scan")


def _label(key: str) -> str:
    return key.replace("_", " ")


def _scalar(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value is None:
        return "-"
    return str(value)


def render_report(report: ReportLike | None, *, error: str | None = None, pending: bool = True) -> Text:
    """The whole report as text (words and symbols, readable without colour)."""
    text = Text()
    if report is None and error is None and not pending:
        text.append("No package was given to this window: it watches the campaign's journal.\n")
        text.append("To resume the campaign here, open it with --package, --manifest and --policy.\n")
        return text
    if error is not None:
        text.append("✖ PACKAGE NOT VERIFIED\n", style="bold red")
        text.append(f"The package could not be checked: {error}\n")
        text.append("The campaign cannot start.\n")
        return text
    if report is None:
        text.append("… verifying the package against the trust policy\n")
        return text
    if report.accepted:
        text.append("✔ PACKAGE ACCEPTED\n", style="bold green")
        text.append("The signatures meet the trust policy and the content scan found no backdoor.\n\n")
    else:
        text.append("✖ PACKAGE REFUSED\n", style="bold red")
        text.append(f"Why: {report.message}\n", style="bold")
        text.append(f"Reason code: {report.reason}\n")
        text.append("The campaign cannot start with this package.\n\n")
    data = dict(report.to_dict())
    keys = [k for k in FIRST_KEYS if k in data] + [k for k in data if k not in FIRST_KEYS]
    for key in keys:
        if key in ("accepted", "reason", "message"):
            continue
        _render(text, key, data[key], 0)
    return text


def _render(text: Text, key: str, value: Any, depth: int) -> None:
    pad = "  " * depth
    if isinstance(value, dict):
        text.append(f"{pad}{_label(key)}:\n", style="bold" if depth == 0 else "")
        for k, v in value.items():
            _render(text, str(k), v, depth + 1)
    elif isinstance(value, list | tuple):
        if not value:
            text.append(f"{pad}{_label(key)}: none\n")
        elif all(not isinstance(v, dict | list | tuple) for v in value):
            text.append(f"{pad}{_label(key)}: {', '.join(_scalar(v) for v in value)}\n")
        else:
            text.append(f"{pad}{_label(key)}:\n", style="bold" if depth == 0 else "")
            for item in value:
                if isinstance(item, dict):
                    first = True
                    for k, v in item.items():
                        if isinstance(v, dict | list | tuple):
                            _render(text, str(k), v, depth + 2)
                            continue
                        bullet = "- " if first else "  "
                        text.append(f"{pad}  {bullet}{_label(str(k))}: {_scalar(v)}\n")
                        first = False
                else:
                    text.append(f"{pad}  - {_scalar(item)}\n")
    else:
        text.append(f"{pad}{_label(key)}: {_scalar(value)}\n")


class PackageView(Vertical):
    DEFAULT_CSS = """
    PackageView { height: 1fr; }
    PackageView > VerticalScroll { height: 1fr; padding: 0 1; }
    PackageView > Horizontal { height: 3; }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(render_report(None), id="package-report")
        with Horizontal():
            yield Button("Start campaign…", id="start-campaign", variant="primary", disabled=True)
            yield Static("", id="package-hint")

    def show(self, report: ReportLike | None, *, can_start: bool, hint: str,
             error: str | None = None, pending: bool = True) -> None:
        self.query_one("#package-report", Static).update(render_report(report, error=error, pending=pending))
        self.query_one("#start-campaign", Button).disabled = not can_start
        self.query_one("#package-hint", Static).update(hint)
