"""What every export says, computed once from the journal: the one model all formats render.

An auditor asks which monitor was patched against what, by whom, with what proof. ``build_model`` folds
the hash-chained journal records of one campaign into that answer: campaign metadata (package, signers,
operator), waves with their approvers, one row per monitor (identity, firmware before/after, state,
verdict per CVE, when it was verified, evidence, a timeline), and the chain head that pins the export to
the journal it came from. Device state comes from ``domain.status.project`` so an export can never
disagree with ``cmspatch status`` or the TUI; this module only adds what the projection leaves out.

Whitelisting, not scrubbing: every value copied out of an event payload is named here, field by field.
Free text an event may carry (log messages, error strings, technician notes, work orders, the inventory
path, arbitrary policy keys) is never copied, and evidence ``details`` pass ``sanitize.details`` first.
This is why no secret and no patient data can reach an export even if an adapter put one in an event.

Deliberately left out: no I/O (the CLI reads the journal and writes files) and no clock (the generation
time is the newest record's time unless the caller passes one, so the same journal gives the same bytes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.domain.describe import Audience, describe
from orchestrator.domain.events import GENESIS_HASH, EventKind, JournalRecord, chain_hash
from orchestrator.domain.evidence import EvidenceLevel, level_of, weakest
from orchestrator.domain.findings import Finding, observed
from orchestrator.domain.projection import CVE_IDS, Outcome, Phase, classify, outcome, phase
from orchestrator.domain.status import DEVICE_RECORDS, SURVEY_STATUSES, campaign_mode, project
from orchestrator.domain.verdicts import Evidence
from orchestrator.errors import ExportError, JournalError
from orchestrator.exports.sanitize import details as sanitize_details
from orchestrator.exports.sanitize import text as clean

# Outcome and classify live with the projection (one count for status, the TUI and every export); they
# stay importable from here for the renderers.
__all__ = ["CVE_IDS", "OUTCOME_SYMBOL", "DeviceRow", "ExportModel", "Outcome", "build_model", "classify"]

OUTCOME_SYMBOL: dict[Outcome, str] = {
    Outcome.PATCHED: "\u2714",  # heavy check mark
    Outcome.DEFERRED: "\u2016",  # double vertical bar, a pause sign in most fonts
    Outcome.FAILED: "\u2718",  # heavy ballot x
    Outcome.INCONCLUSIVE: "?",
    Outcome.NOT_DONE: "\u2026",  # ellipsis
}


@dataclass(frozen=True)
class EvidenceItem(Evidence):
    """The domain's evidence record as journalled, plus the CVEs its check-result spoke to."""

    cves: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "cves": list(self.cves)}


@dataclass(frozen=True)
class TimelineEntry:
    seq: int
    at: str
    kind: str
    summary: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "kind": self.kind, "summary": self.summary, "hash": self.hash}


@dataclass(frozen=True)
class CveStatus:
    cve: str
    verdict: str  # "fixed" | "vulnerable" | "inconclusive" | "" (not verified)
    reason: str = ""
    at: str = ""
    level: str = ""  # how the verdict was established (domain.evidence.EvidenceLevel); "" when not verified


@dataclass(frozen=True)
class DeviceRow:
    name: str
    asset_tag: str
    serial: str
    site: str
    ward: str
    bed: str
    model: str
    delivery: str
    wave: int | None
    state: str
    reason: str
    firmware_before: str
    firmware_after: str
    cves: tuple[CveStatus, ...]
    verified_at: str
    technician: str
    approver: str
    outcome: Outcome
    attempts: int = 0
    firmware_after_by: str = ""  # "technician NAME": the version a person read on the About screen
    evidence: tuple[EvidenceItem, ...] = ()
    timeline: tuple[TimelineEntry, ...] = ()
    # Facts about the monitor that belong to no campaign (domain.status.DEVICE_RECORDS): its latest
    # containment record and its vitals checks against a patient simulator.
    containment: dict[str, Any] | None = None
    vitals: tuple[dict[str, Any], ...] = ()
    # What the failed checks show the monitor doing (domain.findings), for every run; and for a read-only
    # survey/verify run its survey word (vulnerable | unproven | fixed | unknown) and whether it answered.
    findings: tuple[Finding, ...] = ()
    survey_status: str = ""
    reachable: bool | None = None

    @property
    def contained(self) -> bool:
        """Isolated or disconnected, as a named person confirmed (clinical-use is a decision, not a block)."""
        return self.containment is not None and self.containment.get("state") in ("isolated", "disconnected")

    def verdict(self, cve: str) -> str:
        return next((c.verdict for c in self.cves if c.cve == cve), "")

    def level(self, cve: str) -> str:
        """How ``cve``'s verdict was established ("" when not verified)."""
        return next((c.level for c in self.cves if c.cve == cve), "")

    @property
    def evidence_level(self) -> str:
        """The weakest level among this monitor's verdicts: it is only as proven as its least proven CVE."""
        found = weakest(EvidenceLevel(c.level) for c in self.cves if c.verdict and c.level)
        return found.value if found is not None else ""


@dataclass(frozen=True)
class WaveInfo:
    index: int
    devices: tuple[str, ...]
    started_at: str = ""
    finished_at: str = ""
    approver: str = ""
    approved_at: str = ""


@dataclass(frozen=True)
class CampaignInfo:
    id: str
    created_at: str
    operator: str
    package_name: str
    package_sha256: str
    manifest_sha256: str
    target_version: str
    signers: tuple[str, ...]
    policy: dict[str, Any]
    status: str  # "finished" | "halted" | "aborted" | "in progress"
    ended_at: str = ""
    end_reason: str = ""
    # "patch", or "survey" / "verify" for a read-only run: it installed nothing, so no document may say
    # fixed from it, and its package fields are empty (``survey`` holds how it looked: network, window...)
    mode: str = "patch"
    survey: dict[str, Any] = field(default_factory=dict)
    # who signed the manifest, as the trust policy named them when the campaign started: keyid, role, owner
    signed_by: tuple[dict[str, str], ...] = ()

    def signer_names(self) -> tuple[str, ...]:
        """Each signer as people read it: "owner (role)"; a journal that recorded only key ids says so."""
        if self.signed_by:
            return tuple(f"{s['owner'] or 'key ' + s['keyid'][:16]} ({s['role'] or 'no role'})"
                         for s in self.signed_by)
        return tuple(f"key {k[:16]} (name not recorded in this journal)" for k in self.signers)


@dataclass(frozen=True)
class ExportModel:
    campaign: CampaignInfo
    waves: tuple[WaveInfo, ...]
    devices: tuple[DeviceRow, ...]
    chain_head: str  # hash of the newest journal record read
    chain_records: int
    campaign_head: str  # hash of the campaign's newest record
    generated_at: str
    publisher: str
    # Contacts with the indicator range that fit no monitor (domain.attribution): a unit on the wire that no
    # inventory names, or a known one at an unknown address. Each: at, source, mac, target, kind, watched.
    unattributed: tuple[dict[str, Any], ...] = ()

    def summary(self, by: str) -> dict[str, dict[Outcome, int]]:
        """Monitors per outcome, grouped by ``"site"`` or ``"model"`` (sorted by group name)."""
        table: dict[str, dict[Outcome, int]] = {}
        for row in sorted(self.devices, key=lambda r: getattr(r, by)):
            counts = table.setdefault(getattr(row, by) or "(unknown)", {o: 0 for o in Outcome})
            counts[row.outcome] += 1
        return table

    def survey_totals(self) -> dict[str, int]:
        """A read-only run: monitors per survey word (``domain.status.SURVEY_STATUSES``, zeros included)."""
        counts = dict.fromkeys(SURVEY_STATUSES, 0)
        for row in self.devices:
            counts[row.survey_status if row.survey_status in counts else "unknown"] += 1
        return counts

    def totals(self) -> dict[Outcome, int]:
        counts = {o: 0 for o in Outcome}
        for row in self.devices:
            counts[row.outcome] += 1
        return counts


def verify_chain(records: Sequence[JournalRecord]) -> None:
    """Refuse to export from records whose hash chain does not verify: the head would prove nothing."""
    if records and (records[0].seq != 1 or records[0].prev_hash != GENESIS_HASH):
        raise JournalError(
            f"the records start at {records[0].seq}, not at the journal's first record: a chain "
            "head proves something only over the whole journal",
            reason="chain-broken",
        )
    previous: JournalRecord | None = None
    for record in records:
        if previous is not None and (record.prev_hash != previous.hash or record.seq != previous.seq + 1):
            raise JournalError(
                f"journal chain broken at record {record.seq}: it does not follow record {previous.seq}",
                reason="chain-broken",
            )
        expected = chain_hash(
            record.prev_hash,
            record.seq,
            record.campaign,
            record.kind.value,
            record.device,
            record.at,
            record.data,
        )
        if expected != record.hash:
            raise JournalError(
                f"journal chain broken at record {record.seq}: its hash does not match its "
                "content (edited after it was written?)",
                reason="chain-broken",
            )
        previous = record


_FACT_TEXT = ("state", "by", "how", "physician", "outcome", "technician", "simulator", "at", "hash")
_READING = ("parameter", "set_to", "displayed", "tolerance", "unit", "within")


def _clean_fact(fact: dict[str, Any] | None) -> dict[str, Any] | None:
    """A containment or vitals record as exports carry it: named fields only (a free-text ``note`` is never
    exported, see ``sanitize``), each value cleaned, with the journal record's seq and hash."""
    if fact is None:
        return None
    out: dict[str, Any] = {k: clean(fact[k]) for k in _FACT_TEXT if isinstance(fact.get(k), str)}
    out["seq"] = fact.get("seq")
    if isinstance(fact.get("capture"), dict):
        out["capture"] = sanitize_details(fact["capture"])
    if isinstance(fact.get("readings"), list):
        out["readings"] = [{k: r.get(k) if not isinstance(r.get(k), str) else clean(r[k]) for k in _READING}
                           for r in fact["readings"] if isinstance(r, dict)]
        out["mismatches"] = [clean(m) for m in fact.get("mismatches") or () if isinstance(m, str)]
    return out


# The export's word for the projection's phase: a halted campaign stays "halted" after the finished record
# its engine writes next (it ended, but not as planned).
_STATUS_WORD = {Phase.FINISHED: "finished", Phase.HALTED: "halted", Phase.ABORTED: "aborted"}


def _s(value: object) -> str:
    return clean(value) if value is not None else ""


def _latest_campaign(records: Sequence[JournalRecord]) -> str:
    created = [r.campaign for r in records if r.kind is EventKind.CAMPAIGN_CREATED]
    # a journal with no patch campaign (a survey first, as the regulators ask) exports its newest run
    created = created or [r.campaign for r in records if r.kind is EventKind.SURVEY_STARTED]
    if not created:
        raise ExportError("the journal holds no campaign or survey to export", reason="no-campaign")
    return created[-1]


def _evidence(raw: object, cves: Iterable[object] = ()) -> EvidenceItem | None:
    if not isinstance(raw, dict):
        return None
    return EvidenceItem(
        check=_s(raw.get("check")),
        source=_s(raw.get("source")),
        observed_at=_s(raw.get("observed_at")),
        outcome=_s(raw.get("outcome")),
        summary=_s(raw.get("summary")),
        sha256=_s(raw.get("sha256")),
        cves=tuple(_s(c) for c in cves),
        details=sanitize_details(raw.get("details")),
    )


@dataclass
class _Extra:
    """Per-device facts the status projection does not keep."""

    evidence: list[EvidenceItem] = field(default_factory=list)
    seen: set[tuple[str, str, str]] = field(default_factory=set)
    timeline: list[TimelineEntry] = field(default_factory=list)
    cves: dict[str, CveStatus] = field(default_factory=dict)
    verified_at: str = ""

    def add_evidence(self, item: EvidenceItem | None) -> None:
        if item is None:
            return
        key = (item.check, item.sha256, item.observed_at)
        if key not in self.seen:
            self.seen.add(key)
            self.evidence.append(item)


def _policy(raw: object) -> dict[str, Any]:
    keep = (
        "waves",
        "group_by",
        "per_site_concurrency",
        "max_failures",
        "max_failure_pct",
        "require_approval",
        "unreachable_is_failure",
        "exercise_triggers",
        "observation_window",
    )
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {}
    for key in keep:
        if key not in raw:
            continue
        value = raw[key]
        if isinstance(value, bool | int | float) or value is None:
            out[key] = value
        elif isinstance(value, list | tuple):
            out[key] = [_s(v) for v in value]
        else:
            out[key] = _s(value)
    return out


def build_model(
    records: Iterable[JournalRecord],
    campaign: str | None = None,
    *,
    publisher: str | None = None,
    generated_at: str | None = None,
    chain_verified: bool = False,
) -> ExportModel:
    """Fold the journal (all records, oldest first) into the model of one campaign's export.
    ``chain_verified``: the caller ran ``verify_chain`` on these very records (a model per run of one
    journal, as the incident drafts build, needs the chain checked once, not once per run)."""
    everything = list(records)
    if not everything:
        raise ExportError("the journal is empty: nothing to export", reason="no-campaign")
    if not chain_verified:
        verify_chain(everything)
    campaign_id = campaign or _latest_campaign(everything)
    mine = [r for r in everything if r.campaign == campaign_id]
    mode = campaign_mode(campaign_id)
    # A read-only run's header is its survey-started record; one journalled before headers existed has
    # none and is described by its records alone (no package, no waves: nothing was installed).
    header_kind = EventKind.CAMPAIGN_CREATED if mode == "patch" else EventKind.SURVEY_STARTED
    created = next((r for r in mine if r.kind is header_kind), None)
    if created is None and (mode == "patch" or not mine):
        raise ExportError(f"campaign {campaign_id!r} is not in this journal", reason="unknown-campaign")
    fleet = project(mine, campaign_id)
    facts = project(r for r in everything if r.campaign == DEVICE_RECORDS)  # containment, vitals checks

    extras: dict[str, _Extra] = {}
    waves: dict[int, dict[str, str]] = {}
    ended_at, end_reason = "", ""
    for record in mine:
        d = record.data
        if record.device is not None:
            extra = extras.setdefault(record.device, _Extra())
            if record.kind is not EventKind.LOG:
                extra.timeline.append(
                    TimelineEntry(
                        record.seq, record.at, record.kind.value, clean(describe(record, Audience.EXPORT)),
                        record.hash,
                    )
                )
            if record.kind is EventKind.CHECK_RESULT:
                extra.add_evidence(_evidence(d.get("evidence"), d.get("cves") or ()))
            elif record.kind is EventKind.VERDICT:
                cve = _s(d.get("cve"))
                extra.cves[cve] = CveStatus(cve, _s(d.get("verdict")), _s(d.get("reason")), record.at,
                                            level_of(d).value)
                extra.verified_at = record.at
                for raw in d.get("evidence") or ():
                    extra.add_evidence(_evidence(raw, (cve,)))
        kind = record.kind
        if kind in (EventKind.WAVE_STARTED, EventKind.WAVE_FINISHED, EventKind.GATE_APPROVED):
            try:
                wave = waves.setdefault(int(d.get("wave", -1)), {})
            except (TypeError, ValueError):
                continue
            if kind is EventKind.WAVE_STARTED:
                wave.setdefault("started_at", record.at)
            elif kind is EventKind.WAVE_FINISHED:
                wave["finished_at"] = record.at
            else:
                wave["approver"], wave["approved_at"] = _s(d.get("approver")), record.at
        elif kind is EventKind.CAMPAIGN_FINISHED:
            ended_at = record.at
        elif kind is EventKind.CAMPAIGN_HALTED:
            ended_at, end_reason = record.at, _s(d.get("reason") or d.get("rule"))
        elif kind is EventKind.CAMPAIGN_ABORTED:
            ended_at = record.at
            end_reason = f"aborted by {_s(d.get('by'))}: {_s(d.get('reason'))}"

    wave_list = tuple(
        WaveInfo(index=i, devices=tuple(_s(n) for n in names), **waves.get(i, {}))
        for i, names in enumerate(fleet.waves)
    )
    approver_of = {w.index: w.approver for w in wave_list}

    rows: list[DeviceRow] = []
    for name in sorted(
        fleet.devices, key=lambda n: (fleet.devices[n].site, fleet.devices[n].ward, fleet.devices[n].bed, n)
    ):
        dev = fleet.devices[name]
        extra = extras.get(name, _Extra())
        cves = tuple(extra.cves.get(cve, CveStatus(cve, "")) for cve in CVE_IDS)
        state = dev.state.value
        rows.append(
            DeviceRow(
                name=_s(name),
                asset_tag=_s(dev.asset_tag),
                serial=_s(dev.serial),
                site=_s(dev.site),
                ward=_s(dev.ward),
                bed=_s(dev.bed),
                model=_s(dev.model),
                delivery=_s(dev.delivery),
                wave=dev.wave,
                state=state,
                reason=_s(dev.reason),
                firmware_before=_s(dev.firmware_before),
                firmware_after=_s(dev.firmware_after),
                firmware_after_by=_s(dev.firmware_after_by),
                cves=cves,
                verified_at=extra.verified_at,
                technician=_s(dev.technician),
                approver=approver_of.get(dev.wave, "") if dev.wave is not None else "",
                outcome=outcome(dev, mode),
                attempts=dev.attempts,
                evidence=tuple(extra.evidence),
                timeline=tuple(extra.timeline),
                containment=_clean_fact(facts.containment(name)),
                vitals=tuple(f for f in (_clean_fact(v) for v in facts.vitals(name)) if f is not None),
                findings=observed(e.to_dict() for e in extra.evidence),
                survey_status=_s(dev.survey_status) if mode != "patch" else "",
                reachable=dev.reachable if mode != "patch" else None,
            )
        )

    c = created.data if created is not None else {}
    info = CampaignInfo(
        id=campaign_id,
        created_at=created.at if created is not None else mine[0].at,
        operator=_s(c.get("operator")),
        package_name=_s(c.get("package_name")),
        package_sha256=_s(c.get("package_sha256")),
        manifest_sha256=_s(c.get("manifest_sha256")),
        target_version=_s(c.get("target_version")),
        signers=tuple(_s(s) for s in c.get("signers") or ()),
        policy=_policy(c.get("policy")),
        status=_STATUS_WORD.get(phase(fleet), "in progress"),
        ended_at=ended_at,
        end_reason=end_reason,
        mode=mode,
        survey=_survey_header(c) if mode != "patch" else {},
        signed_by=tuple({k: _s(s.get(k) or "") for k in ("keyid", "role", "owner")}
                        for s in c.get("signed_by") or () if isinstance(s, dict)),
    )
    hospital = publisher or _s(c.get("hospital")) or info.operator or "cmspatch user"
    return ExportModel(
        campaign=info,
        waves=wave_list,
        devices=tuple(rows),
        chain_head=everything[-1].hash,
        chain_records=len(everything),
        campaign_head=mine[-1].hash,
        generated_at=generated_at or everything[-1].at,
        publisher=clean(hospital),
        unattributed=tuple(_contact(c) for c in fleet.unattributed_contacts()),
    )


def _survey_header(raw: dict[str, Any]) -> dict[str, Any]:
    """How a read-only run looked, from its header: named fields only (the inventory path is left out)."""
    out: dict[str, Any] = {k: _s(raw[k]) for k in ("started_at", "network", "trigger_by", "expected_version",
                                                  "package_sha256") if raw.get(k) is not None}
    for key in ("window", "exercise_triggers", "udp_probe"):
        if isinstance(raw.get(key), bool | int | float):
            out[key] = raw[key]
    return out


def _contact(raw: dict[str, Any]) -> dict[str, Any]:
    """An unattributed contact as exports carry it: addresses, kinds and hashes, never a payload."""
    keep = ("at", "source", "mac", "target", "protocol", "kind", "sha256")
    out: dict[str, Any] = {k: clean(raw[k]) for k in keep if isinstance(raw.get(k), str)}
    out["watched"] = [clean(n) for n in raw.get("watched") or () if isinstance(n, str)]
    return out
