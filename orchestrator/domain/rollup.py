"""The regional roll-up: where every facility stands, from the signed exports the facilities send.

A Region asks each facility for its signed JSON export (``cmspatch export --format json --sign``) and must
know, per facility and model, how many monitors are patched (by evidence level), contained, deferred,
vulnerable or unknown; which facilities have not reported since a date; which exports failed
verification and why; and whether one serial number is reported by two facilities. The region policy
names the facilities and the keys that sign for each::

    # region-policy.yaml
    version: 1
    region: "Regione Esempio"
    reported_since: "2026-11-24"      # a facility whose newest export is older has not reported
    facilities:
      - name: "Ospedale Nord"
        keys:
          - owner: "A. Rossi, Biomedical Engineering"
            public_key: |
              -----BEGIN PUBLIC KEY-----
              ...

An export counts for the facility whose key signed it, never for the name written inside it. Each
monitor's regional status is one word, by precedence: ``patched`` (its export shows it patched, or a
read-only run saw it fixed), ``contained`` (isolated or disconnected, as a named person confirmed),
``deferred``, ``vulnerable`` (a CVE verified present, or an install that failed), ``unknown`` (everything
unproven). Where one facility sent several exports, the newest one that holds a serial speaks for it,
except that a later read-only survey which could prove nothing either way does not undo a patch proven
earlier (one that saw the backdoor does).

Deliberately left out: no I/O and no signature checking (``cli/rollup.py`` verifies each file with
``exports.signing`` before anything here reads it); CSV/CSAF exports are not rolled up (the JSON export is
the one that carries every monitor with its verdicts and containment).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from orchestrator.domain.strict_load import MIB, Limits, StrictLoadError, load_yaml_document
from orchestrator.domain.trust.signatures import PublicKey, load_public_key
from orchestrator.errors import TrustError, UsageError

REGION_POLICY = Limits("region policy", 1 * MIB, max_nodes=50_000, max_aliases=0)
STATUSES = ("patched", "contained", "deferred", "vulnerable", "unknown")


class RegionPolicyError(UsageError):
    reason = "bad-region-policy"


@dataclass(frozen=True)
class FacilityKey:
    key: PublicKey
    owner: str


@dataclass(frozen=True)
class Facility:
    name: str
    keys: tuple[FacilityKey, ...]


@dataclass(frozen=True)
class RegionPolicy:
    region: str
    reported_since: str  # ISO date, "" when not set
    facilities: tuple[Facility, ...]

    def facility_of(self, keyid: str) -> tuple[Facility, FacilityKey] | None:
        for facility in self.facilities:
            for k in facility.keys:
                if k.key.keyid == keyid:
                    return facility, k
        return None

    @property
    def keys(self) -> list[PublicKey]:
        return [k.key for f in self.facilities for k in f.keys]


def _refuse(filename: str, line: int, message: str) -> RegionPolicyError:
    where = f"{filename}:{line}" if line else filename
    return RegionPolicyError(f"{where}: {message}")


def parse_region_policy(data: bytes | str, filename: str = "region policy") -> RegionPolicy:
    """Parse the region policy (strictly: duplicate keys, size, depth refused with file:line)."""
    try:
        loaded = load_yaml_document(data, filename, REGION_POLICY)
    except StrictLoadError as exc:
        raise RegionPolicyError(exc.message, reason=exc.reason) from exc
    doc = loaded.value
    if not isinstance(doc, dict):
        raise _refuse(filename, 0, "must be a mapping with region, reported_since and facilities")
    unknown = set(doc) - {"version", "region", "reported_since", "facilities"}
    if unknown:
        raise _refuse(filename, loaded.line_of((sorted(map(str, unknown))[0],)),
                      f"unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    if doc.get("version", 1) != 1:
        raise _refuse(filename, loaded.line_of(("version",)), "version must be 1")
    since = doc.get("reported_since", "")
    if isinstance(since, date):
        since = since.isoformat()
    if not isinstance(since, str) or (since and not _is_date(since)):
        raise _refuse(filename, loaded.line_of(("reported_since",)), "reported_since must be a date, "
                      "e.g. 2026-11-24")
    raw = doc.get("facilities")
    if not isinstance(raw, list) or not raw:
        raise _refuse(filename, loaded.line_of(("facilities",)), "facilities must list at least one facility")
    facilities: list[Facility] = []
    seen_names: set[str] = set()
    seen_keys: dict[str, str] = {}
    for i, entry in enumerate(raw):
        line = loaded.line_of(("facilities", i))
        if not isinstance(entry, dict) or set(entry) - {"name", "keys"}:
            raise _refuse(filename, line, "a facility has a name and keys, nothing else")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip() or name.strip() in seen_names:
            raise _refuse(filename, line, "each facility needs a name of its own")
        seen_names.add(name.strip())
        keys: list[FacilityKey] = []
        for j, k in enumerate(entry.get("keys") or ()):
            kline = loaded.line_of(("facilities", i, "keys", j))
            if not isinstance(k, dict) or not isinstance(k.get("public_key"), str) or set(k) - {
                    "public_key", "owner"}:
                raise _refuse(filename, kline, "a key is public_key (PEM) and owner (who holds it)")
            try:
                key = load_public_key(k["public_key"], source=f"{filename}:{kline}")
            except TrustError as exc:
                raise _refuse(filename, kline, exc.message) from exc
            if key.keyid in seen_keys:
                raise _refuse(filename, kline, f"key {key.keyid[:16]} already signs for "
                              f"{seen_keys[key.keyid]}: one key speaks for one facility")
            seen_keys[key.keyid] = name.strip()
            keys.append(FacilityKey(key, str(k.get("owner") or "").strip()))
        if not keys:
            raise _refuse(filename, line, f"facility {name.strip()!r} lists no key: none of its exports "
                          "could be verified")
        facilities.append(Facility(name.strip(), tuple(keys)))
    region = doc.get("region", "")
    return RegionPolicy(str(region or "").strip(), since, tuple(facilities))


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


# --- one monitor's regional status ----------------------------------------------------------------

def _verdicts(device: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    raw = device.get("verdicts")
    return [v for v in raw.values() if isinstance(v, Mapping)] if isinstance(raw, Mapping) else []


def _level(device: Mapping[str, Any]) -> str:
    """How the patched verdicts were established, where the export says (evidence levels, issue 9/12)."""
    if isinstance(device.get("evidence_level"), str) and device["evidence_level"]:
        return str(device["evidence_level"])
    levels = {str(v.get("level")) for v in _verdicts(device) if v.get("level")}
    if not levels:
        return "not stated"
    return levels.pop() if len(levels) == 1 else "mixed (" + ", ".join(sorted(levels)) + ")"


def status_of(device: Mapping[str, Any], mode: str) -> tuple[str, str]:
    """(regional status, evidence level) of one monitor as one JSON export states it."""
    held = device.get("containment") if isinstance(device.get("containment"), Mapping) else None
    contained = held is not None and held.get("state") in ("isolated", "disconnected")
    values = {str(v.get("verdict")) for v in _verdicts(device)}
    if mode == "patch":
        if device.get("outcome") == "patched":
            return "patched", _level(device)
        if contained:
            return "contained", ""
        if device.get("outcome") == "deferred":
            return "deferred", ""
        if "vulnerable" in values or device.get("outcome") == "failed":
            return "vulnerable", ""
        return "unknown", ""
    if device.get("survey_status") == "fixed":
        return "patched", f"observed fixed by a read-only {mode}"
    if contained:
        return "contained", ""
    return ("vulnerable", "") if device.get("survey_status") == "vulnerable" else ("unknown", "")


# --- the roll-up ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExportCheck:
    """One file handed in: whether it verified, for which facility, and what it says."""

    file: str
    valid: bool
    reason: str  # "valid" or why not (signature reasons, chain-head-mismatch, not-a-json-export ...)
    message: str
    facility: str = ""  # the facility whose key signed (valid exports only)
    signed_by: str = ""  # the person the signed statement names
    key_owner: str = ""  # who holds the key, from the region policy
    reported_at: str = ""  # signed_at, else the export's generated_at
    campaign: str = ""
    mode: str = ""
    chain_head: str = ""
    document: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class MonitorStanding:
    facility: str
    serial: str
    name: str
    model: str
    status: str
    level: str
    campaign: str
    reported_at: str
    device: Mapping[str, Any] = field(compare=False, repr=False)
    mode: str = "patch"


@dataclass(frozen=True)
class Rollup:
    region: str
    since: str
    checks: tuple[ExportCheck, ...]
    monitors: tuple[MonitorStanding, ...]
    not_reported: tuple[tuple[str, str], ...]  # (facility, newest report or "never")
    duplicates: tuple[tuple[str, tuple[str, ...]], ...]  # (serial, facilities reporting it)

    def counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """facility -> model -> status -> monitors (every status present)."""
        table: dict[str, dict[str, dict[str, int]]] = {}
        for m in self.monitors:
            row = table.setdefault(m.facility, {}).setdefault(m.model or "unknown model",
                                                               dict.fromkeys(STATUSES, 0))
            row[m.status] += 1
        return table

    def patched_by_level(self) -> dict[str, dict[str, dict[str, int]]]:
        """facility -> model -> evidence level -> patched monitors."""
        table: dict[str, dict[str, dict[str, int]]] = {}
        for m in self.monitors:
            if m.status == "patched":
                levels = table.setdefault(m.facility, {}).setdefault(m.model or "unknown model", {})
                levels[m.level or "not stated"] = levels.get(m.level or "not stated", 0) + 1
        return table

    def totals(self) -> dict[str, int]:
        out = dict.fromkeys(STATUSES, 0)
        for m in self.monitors:
            out[m.status] += 1
        return out


def roll_up(policy: RegionPolicy, checks: Sequence[ExportCheck], since: str = "") -> Rollup:
    """Fold the verified exports into the regional status. ``since`` overrides the policy's date."""
    since = since or policy.reported_since
    valid = sorted((c for c in checks if c.valid and c.document is not None), key=lambda c: c.reported_at)
    newest: dict[tuple[str, str], MonitorStanding] = {}
    for check in valid:  # oldest first: a newer export of the same facility replaces what it holds
        assert check.document is not None
        for device in _devices(check.document):
            serial = str(device.get("serial") or device.get("device") or "")
            status, level = status_of(device, check.mode)
            before = newest.get((check.facility, serial))
            if before is not None and before.status == "patched" and check.mode != "patch" \
                    and status in ("unknown", "contained"):
                continue  # a later read-only run that could not prove it either way does not undo a proof
            newest[(check.facility, serial)] = MonitorStanding(
                check.facility, serial, str(device.get("device") or ""), str(device.get("model") or ""),
                status, level, check.campaign, check.reported_at, device, check.mode)
    last: dict[str, str] = {}
    for check in valid:
        last[check.facility] = max(last.get(check.facility, ""), check.reported_at)
    stale = tuple((f.name, last.get(f.name, "never")) for f in policy.facilities
                  if f.name not in last or (since and last[f.name][:10] < since))
    by_serial: dict[str, set[str]] = defaultdict(set)
    for facility, serial in newest:
        if serial:
            by_serial[serial].add(facility)
    duplicates = tuple((s, tuple(sorted(fs))) for s, fs in sorted(by_serial.items()) if len(fs) > 1)
    monitors = tuple(sorted(newest.values(), key=lambda m: (m.facility, m.model, m.serial)))
    return Rollup(policy.region, since, tuple(checks), monitors, stale, duplicates)


def _devices(doc: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    return [d for d in doc.get("devices") or () if isinstance(d, Mapping)]
