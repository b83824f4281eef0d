"""The manifest: what the hospital approved, about which bytes, for which monitors, until when.

A manifest describes one package: its artifact(s) by name, size and SHA-256 *as received* (Contec
publishes no hash, so the hash the hospital recorded on receipt is the reference), the models it applies
to, the firmware versions it upgrades from (exact strings or ``fnmatch`` patterns such as ``CMS7.820.*``;
firmware strings have no ordering we could trust), the version it installs, a release counter that only
ever grows (anti-rollback), the CVEs it fixes and an expiry.

``render_manifest`` is used once, when attesting; verification always works on the payload bytes as
stored and never re-serialises them. Unknown fields are refused rather than ignored: a field a verifier
does not understand is a field nobody checked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrator.domain.indicators import MODELS
from orchestrator.domain.trust.envelope import load_json_object
from orchestrator.domain.trust.reasons import Reason
from orchestrator.errors import TrustError

MANIFEST_TYPE = "cmspatch-manifest"
MANIFEST_VERSION = 1
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CVE = re.compile(r"CVE-\d{4}-\d{4,7}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}")
_FIELDS = {"_type", "version", "package", "artifacts", "models", "from_versions", "target_version",
           "release", "cves", "expires", "created", "note"}
MAX_RELEASE = 2**53  # JSON numbers beyond this lose precision in other readers


@dataclass(frozen=True)
class Artifact:
    name: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class Manifest:
    package: str
    artifacts: tuple[Artifact, ...]
    models: tuple[str, ...]
    from_versions: tuple[str, ...]
    target_version: str
    release: int
    cves: tuple[str, ...]
    expires: datetime
    created: datetime | None = None
    note: str = ""

    def artifact(self, name: str) -> Artifact | None:
        return next((a for a in self.artifacts if a.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "_type": MANIFEST_TYPE,
            "version": MANIFEST_VERSION,
            "package": self.package,
            "artifacts": [a.to_dict() for a in self.artifacts],
            "models": list(self.models),
            "from_versions": list(self.from_versions),
            "target_version": self.target_version,
            "release": self.release,
            "cves": list(self.cves),
            "expires": format_time(self.expires),
        }
        if self.created is not None:
            doc["created"] = format_time(self.created)
        if self.note:
            doc["note"] = self.note
        return doc


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object, field: str) -> datetime:
    if not isinstance(value, str):
        raise _refuse(f"{field} must be an ISO-8601 time string")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise _refuse(f"{field} is not an ISO-8601 time: {value!r}") from exc
    if moment.tzinfo is None:
        raise _refuse(f"{field} must say its time zone (e.g. a trailing Z): {value!r}")
    return moment.astimezone(UTC)


def _refuse(message: str) -> TrustError:
    return TrustError(f"manifest payload: {message}", reason=Reason.MANIFEST_INVALID)


def _text(doc: dict[str, Any], field: str, *, pattern: re.Pattern[str] | None = None) -> str:
    value = doc.get(field)
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise _refuse(f"{field} must be a non-empty string of at most 200 characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise _refuse(f"{field} has an invalid value: {value!r}")
    return value


def _text_list(doc: dict[str, Any], field: str, *, allow_empty: bool = False) -> tuple[str, ...]:
    value = doc.get(field)
    if not isinstance(value, list) or (not value and not allow_empty) or len(value) > 1000:
        raise _refuse(f"{field} must be a {'' if allow_empty else 'non-empty '}list of strings")
    items = tuple(value)
    for item in items:
        if not isinstance(item, str) or not item.strip() or len(item) > 200:
            raise _refuse(f"{field} must hold non-empty strings of at most 200 characters")
    if len(set(items)) != len(items):
        raise _refuse(f"{field} lists a value twice")
    return items


def _int(value: object, field: str, *, minimum: int) -> int:
    # bool is an int in Python; `true` is not a release number.
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_RELEASE:
        raise _refuse(f"{field} must be an integer >= {minimum}")
    return value


def _artifacts(value: object) -> tuple[Artifact, ...]:
    if not isinstance(value, list) or not value or len(value) > 100:
        raise _refuse("artifacts must be a non-empty list")
    artifacts: list[Artifact] = []
    for index, raw in enumerate(value):
        where = f"artifacts[{index}]"
        if not isinstance(raw, dict) or set(raw) != {"name", "size", "sha256"}:
            raise _refuse(f"{where} must be an object with exactly name, size and sha256")
        name = _text(raw, "name", pattern=_NAME)
        sha = raw["sha256"]
        if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
            raise _refuse(f"{where}.sha256 must be 64 lower-case hex digits")
        artifacts.append(Artifact(name=name, size=_int(raw["size"], f"{where}.size", minimum=0), sha256=sha))
    if len({a.name for a in artifacts}) != len(artifacts):
        raise _refuse("two artifacts share a name")
    return tuple(artifacts)


def parse_manifest(payload: bytes) -> Manifest:
    """Read a manifest payload; raises ``TrustError(reason="manifest-invalid")`` on anything else."""
    doc = load_json_object(payload, "the manifest payload")
    unknown = set(doc) - _FIELDS
    if unknown:
        raise _refuse(f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    if doc.get("_type") != MANIFEST_TYPE or doc.get("version") != MANIFEST_VERSION:
        raise _refuse(f"_type must be {MANIFEST_TYPE!r} and version {MANIFEST_VERSION}")
    models = _text_list(doc, "models")
    for model in models:
        if model not in MODELS:
            raise _refuse(f"unknown model {model!r} (known: {' '.join(MODELS)})")
    cves = _text_list(doc, "cves", allow_empty=True)
    for cve in cves:
        if not _CVE.fullmatch(cve):
            raise _refuse(f"not a CVE identifier: {cve!r}")
    note = doc.get("note", "")
    if not isinstance(note, str) or len(note) > 2000:
        raise _refuse("note must be a string of at most 2000 characters")
    return Manifest(
        package=_text(doc, "package", pattern=_NAME),
        artifacts=_artifacts(doc.get("artifacts")),
        models=models,
        from_versions=_text_list(doc, "from_versions"),
        target_version=_text(doc, "target_version"),
        release=_int(doc.get("release"), "release", minimum=1),
        cves=cves,
        expires=parse_time(doc.get("expires"), "expires"),
        created=parse_time(doc["created"], "created") if "created" in doc else None,
        note=note,
    )


def render_manifest(manifest: Manifest) -> bytes:
    """The payload bytes for a new manifest (checked by parsing them back, so we never sign junk)."""
    payload = (json.dumps(manifest.to_dict(), indent=2, sort_keys=True) + "\n").encode("utf-8")
    parse_manifest(payload)
    return payload
