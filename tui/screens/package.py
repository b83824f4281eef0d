"""Package: the trust report before anything starts. A refused package says why, in plain words, and
the campaign cannot be started from this window.

The report is drawn from ``VerificationReport.to_dict()`` (signers, what counted, expiry, hashes,
content scan); keys this screen does not know yet are still shown, generically, at the end.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Static

from tui.session import ReportLike


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
    _sections(text, data)
    return text


KNOWN = {"accepted", "reason", "message", "package", "manifest", "policy", "model", "signatures", "counted",
         "threshold", "problems", "manifest_sha256", "declared", "artifact", "actual", "expires", "scan",
         "state", "recorded"}


def _sections(text: Text, data: dict[str, Any]) -> None:
    """The report of ``package_verify.VerificationReport.to_dict()``, section by section."""
    problems = data.get("problems") or []
    if problems:
        text.append("Problems\n", style="bold underline")
        for p in problems:
            text.append(f"  ✖ {p.get('explanation') or p.get('reason')}\n", style="bold")
            text.append(f"      {p.get('detail', '')} [{p.get('reason')}]\n")
        text.append("\n")
    actual = data.get("actual") or {}
    artifact = data.get("artifact") or {}
    text.append("Package\n", style="bold underline")
    text.append(f"  file      {data.get('package')}\n")
    if actual.get("sha256"):
        same = artifact.get("sha256") in (None, actual.get("sha256"))
        mark = "✖ DIFFERS" if not same else ("✔ matches the manifest" if artifact.get("sha256") else "")
        text.append(f"  sha256    {actual.get('sha256')}  {mark}\n")
        text.append(f"  size      {actual.get('size')} bytes\n")
    if artifact.get("sha256") and artifact.get("sha256") != actual.get("sha256"):
        text.append(f"  declared  {artifact.get('sha256')} ({artifact.get('size')} bytes)\n")
    declared = data.get("declared") or {}
    text.append("Manifest\n", style="bold underline")
    text.append(f"  file      {data.get('manifest')}  sha256 {data.get('manifest_sha256') or '-'}\n")
    for key in ("package", "target_version", "models", "from_versions", "release", "cves"):
        if key in declared:
            _render(text, key, declared[key], 1)
    expires = data.get("expires")
    if expires:
        text.append(f"  expires   {expires}\n")
    text.append("Signatures (trust policy " + str(data.get("policy")) + ")\n", style="bold underline")
    sigs = data.get("signatures") or []
    if not sigs:
        text.append("  none checked\n")
    for sig in sigs:
        mark = "✔ counted " if sig.get("counted") else f"✖ {sig.get('status')}"
        who = f"{sig.get('role') or 'unknown role'}, {sig.get('owner') or 'unknown owner'}"
        detail = f" - {sig.get('detail')}" if sig.get("detail") else ""
        text.append(f"  {mark:<14} {str(sig.get('keyid'))[:16]} ({who}){detail}\n")
    threshold = data.get("threshold") or {}
    if threshold.get("met_by"):
        text.append(f"  ✔ threshold met by rule {threshold.get('met_by')}\n")
    for missing in threshold.get("missing") or []:
        text.append(f"  ✖ still missing: {missing}\n")
    scan = data.get("scan")
    text.append("Content scan (backdoor mount string, 202.114.4.x addresses, unsafe members)\n",
                style="bold underline")
    if not scan:
        text.append("  not run (the checks before it refused the package)\n")
    else:
        clean = "✔ clean" if scan.get("clean") else "✖ NOT CLEAN"
        complete = "complete" if scan.get("complete") else "INCOMPLETE"
        text.append(f"  {clean}, {complete}: {scan.get('format')}, {scan.get('members')} members, "
                    f"{scan.get('bytes_scanned')} bytes scanned\n")
        for f in scan.get("findings") or []:
            text.append(f"  ✖ {f.get('kind')} in {f.get('member')} at offset {f.get('offset')}: "
                        f"{f.get('text')}\n")
        for u in scan.get("unsafe_members") or []:
            text.append(f"  ✖ unsafe member {u.get('name')}: {u.get('kind')} ({u.get('reason')})\n")
        for u in scan.get("uninspectable") or []:
            text.append(f"  ? could not look into {u}\n")
        if scan.get("corrupt"):
            text.append(f"  ✖ corrupt: {scan.get('corrupt')}\n")
        if scan.get("limit_exceeded"):  # the decompression limits (the report's "limits" key below)
            text.append(f"  ✖ stopped at a limit: {scan['limit_exceeded'].get('detail')}\n")
    if data.get("state"):
        rec = "recorded" if data.get("recorded") else "not recorded"
        text.append(f"Anti-rollback state {data.get('state')} ({rec})\n")
    for key in data:
        if key not in KNOWN:
            _render(text, key, data[key], 0)


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
