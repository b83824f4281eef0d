"""The CSAF 2.0 mandatory tests (section 6.1) that a JSON schema cannot express, for what we write.

A document can be schema-valid and still be refused by a CSAF validator: a product id used but never
defined, a product both fixed and affected, a CVE listed twice, an affected product with no action
statement in a VEX document. These are the tests our VEX export could break; each problem names its
test number so it can be looked up in the standard.

Deliberately left out: tests about parts we never write (CVSS consistency 6.1.7-6.1.10, CWE 6.1.11,
language 6.1.12, PURL 6.1.13, translations 6.1.15/6.1.28, flags 6.1.32/6.1.33, version ranges 6.1.31).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

_AFFECTED = ("first_affected", "known_affected", "last_affected")
_NOT_AFFECTED = ("known_not_affected",)
_FIXED = ("first_fixed", "fixed")
_INVESTIGATING = ("under_investigation",)
_STATUS_GROUPS = (_AFFECTED, _NOT_AFFECTED, _FIXED, _INVESTIGATING)
_VEX_STATUSES = ("fixed", "known_affected", "known_not_affected", "under_investigation")


@dataclass(frozen=True)
class CsafProblem:
    test: str  # e.g. "6.1.1"
    path: str  # JSON path of the offending element
    message: str

    def __str__(self) -> str:
        return f"CSAF {self.test} at {self.path}: {self.message}"


def _defined(branches: list[dict[str, Any]], path: str) -> Iterator[tuple[str, str]]:
    for i, branch in enumerate(branches):
        here = f"{path}[{i}]"
        if "product" in branch:
            yield branch["product"].get("product_id", ""), f"{here}.product"
        yield from _defined(branch.get("branches", []), f"{here}.branches")


def _definitions(doc: dict[str, Any]) -> list[tuple[str, str]]:
    tree = doc.get("product_tree", {})
    found = list(_defined(tree.get("branches", []), "/product_tree/branches"))
    found += [
        (p.get("product_id", ""), f"/product_tree/full_product_names[{i}]")
        for i, p in enumerate(tree.get("full_product_names", []))
    ]
    found += [
        (r.get("full_product_name", {}).get("product_id", ""), f"/product_tree/relationships[{i}]")
        for i, r in enumerate(tree.get("relationships", []))
    ]
    return found


def _references(doc: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for i, vuln in enumerate(doc.get("vulnerabilities", [])):
        base = f"/vulnerabilities[{i}]"
        for status, ids in vuln.get("product_status", {}).items():
            for pid in ids:
                yield pid, f"{base}/product_status/{status}"
        for j, rem in enumerate(vuln.get("remediations", [])):
            for pid in rem.get("product_ids", []):
                yield pid, f"{base}/remediations[{j}]"
        for j, threat in enumerate(vuln.get("threats", [])):
            for pid in threat.get("product_ids", []):
                yield pid, f"{base}/threats[{j}]"
    for i, group in enumerate(doc.get("product_tree", {}).get("product_groups", [])):
        for pid in group.get("product_ids", []):
            yield pid, f"/product_tree/product_groups[{i}]"


def check_mandatory(doc: dict[str, Any]) -> list[CsafProblem]:
    """Run the mandatory tests that apply to a ``csaf_vex`` document we produce; [] when it passes."""
    problems: list[CsafProblem] = []
    definitions = _definitions(doc)
    seen: set[str] = set()
    for pid, path in definitions:  # 6.1.2 multiple definition of product id
        if pid in seen:
            problems.append(CsafProblem("6.1.2", path, f"product id {pid!r} is defined more than once"))
        seen.add(pid)
    for pid, path in _references(doc):  # 6.1.1 missing definition of product id
        if pid not in seen:
            problems.append(CsafProblem("6.1.1", path, f"product id {pid!r} is used but never defined"))
    if "product_tree" not in doc:  # 6.1.27.4
        problems.append(CsafProblem("6.1.27.4", "/", "a VEX document needs a product_tree"))
    vulns = doc.get("vulnerabilities", [])
    if not vulns:  # 6.1.27.11
        problems.append(CsafProblem("6.1.27.11", "/", "a VEX document needs vulnerabilities"))
    cves: set[str] = set()
    for i, vuln in enumerate(vulns):
        base = f"/vulnerabilities[{i}]"
        status = vuln.get("product_status", {})
        groups: dict[str, str] = {}
        for group in _STATUS_GROUPS:  # 6.1.6 contradicting product status
            for name in group:
                for pid in status.get(name, []):
                    if pid in groups and groups[pid] != group[0]:
                        problems.append(
                            CsafProblem(
                                "6.1.6",
                                f"{base}/product_status/{name}",
                                f"product {pid!r} has contradicting statuses",
                            )
                        )
                    groups[pid] = group[0]
        cve = vuln.get("cve")
        if cve in cves:  # 6.1.23 multiple use of same CVE
            problems.append(
                CsafProblem("6.1.23", f"{base}/cve", f"{cve} appears in more than one vulnerability")
            )
        if cve:
            cves.add(cve)
        if not cve and not vuln.get("ids"):  # 6.1.27.8 vulnerability id
            problems.append(CsafProblem("6.1.27.8", base, "neither cve nor ids is given"))
        if not vuln.get("notes"):  # 6.1.27.5 vulnerability notes
            problems.append(CsafProblem("6.1.27.5", base, "a VEX vulnerability needs notes"))
        if not any(status.get(s) for s in _VEX_STATUSES):  # 6.1.27.7 VEX product status
            problems.append(
                CsafProblem(
                    "6.1.27.7",
                    f"{base}/product_status",
                    "needs fixed, known_affected, known_not_affected or under_investigation",
                )
            )
        remediated = {pid for rem in vuln.get("remediations", []) for pid in rem.get("product_ids", [])}
        for pid in status.get("known_affected", []):  # 6.1.27.10 action statement
            if pid not in remediated:
                problems.append(
                    CsafProblem(
                        "6.1.27.10",
                        f"{base}/product_status/known_affected",
                        f"known_affected product {pid!r} has no remediation",
                    )
                )
        impacted = {pid for f in vuln.get("flags", []) for pid in f.get("product_ids", [])}
        impacted |= {
            pid
            for t in vuln.get("threats", [])
            if t.get("category") == "impact"
            for pid in t.get("product_ids", [])
        }
        for pid in status.get("known_not_affected", []):  # 6.1.27.9 impact statement
            if pid not in impacted:
                problems.append(
                    CsafProblem(
                        "6.1.27.9",
                        f"{base}/product_status/known_not_affected",
                        f"known_not_affected product {pid!r} has no impact statement",
                    )
                )
        for j, rem in enumerate(vuln.get("remediations", [])):  # 6.1.29 remediation without product reference
            if not rem.get("product_ids") and not rem.get("group_ids"):
                problems.append(CsafProblem("6.1.29", f"{base}/remediations[{j}]", "names no product"))
    tracking = doc.get("document", {}).get("tracking", {})
    history = tracking.get("revision_history", [])
    numbers = [h.get("number") for h in history]
    if len(set(numbers)) != len(numbers):  # 6.1.22 multiple definition in revision history
        problems.append(
            CsafProblem("6.1.22", "/document/tracking/revision_history", "a number appears twice")
        )
    if history and numbers[-1] != tracking.get("version"):  # 6.1.16 latest document version
        problems.append(
            CsafProblem(
                "6.1.16", "/document/tracking/version", "differs from the newest revision history number"
            )
        )
    dates = [h.get("date", "") for h in history]
    if dates != sorted(dates):  # 6.1.14 sorted revision history (dates are all UTC 'Z' here)
        problems.append(CsafProblem("6.1.14", "/document/tracking/revision_history", "not sorted by date"))
    if tracking.get("status") in ("final", "interim") and str(tracking.get("version", "")).startswith("0"):
        problems.append(CsafProblem("6.1.20", "/document/tracking/version", "a released document is not 0.x"))
    return problems
