"""CycloneDX 1.6 VEX: the same statement as the CSAF export, for tools that speak CycloneDX.

Built with ``cyclonedx-python-lib`` (its models and serializer, and its bundled official schema for the
check before returning). The BOM's manufacturer is the hospital that produced it; each monitor is a
``device`` component (model, installed firmware as its version, serial / asset tag / location as
properties, manufacturer Contec). CycloneDX carries one analysis per vulnerability entry, so each CVE
appears once per distinct analysis, each entry listing the monitors it applies to:

- ``resolved``   where, and only where, the post-patch verdict for that CVE is ``fixed``;
- ``exploitable`` everywhere else (still vulnerable, inconclusive, failed, deferred, not done), with a
  response (``update``; ``workaround_available`` when deferred and kept isolated) and a detail saying why.
  An inconclusive verdict is ``exploitable`` as it is ``known_affected`` in the CSAF export, so the two
  documents never classify one monitor differently: a fix that could not be shown is not claimed.

The serial number is derived from the campaign and chain head (UUIDv5) and the timestamp is the model's,
so the same journal always gives the same bytes. Deliberately left out: ratings (CISA's, not ours).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime

from cyclonedx.model import Property, XsUri
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.contact import OrganizationalEntity
from cyclonedx.model.impact_analysis import (
    ImpactAnalysisAffectedStatus,
    ImpactAnalysisJustification,
    ImpactAnalysisResponse,
    ImpactAnalysisState,
)
from cyclonedx.model.vulnerability import (
    BomTarget,
    BomTargetVersionRange,
    Vulnerability,
    VulnerabilityAnalysis,
    VulnerabilityReference,
    VulnerabilitySource,
)
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from orchestrator.domain.evidence import DESCRIPTION, EvidenceLevel
from orchestrator.errors import ExportError
from orchestrator.exports.csaf import ADVISORY_URL, CVE_TEXT, ISOLATE, _action, _containment_text
from orchestrator.exports.model import CVE_IDS, DeviceRow, ExportModel, Outcome
from orchestrator.exports.survey import KNOWN_AFFECTED, KNOWN_NOT_AFFECTED, statement

MANUFACTURER = "Contec Medical Systems"
_R = ImpactAnalysisResponse
_Key = tuple[ImpactAnalysisState, tuple[ImpactAnalysisResponse, ...], str, ImpactAnalysisAffectedStatus]
_FINDINGS = "cmspatch:observed"


def _time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return datetime(1970, 1, 1, tzinfo=UTC)


def bom_ref(row: DeviceRow) -> str:
    return f"monitor:{row.serial or row.name}:{row.name}"


def _component(model: ExportModel, row: DeviceRow) -> Component:
    props = [
        ("cmspatch:serial", row.serial),
        ("cmspatch:asset_tag", row.asset_tag),
        ("cmspatch:device", row.name),
        ("cmspatch:site", row.site),
        ("cmspatch:ward", row.ward),
        ("cmspatch:bed", row.bed),
        ("cmspatch:firmware_before", row.firmware_before),
        ("cmspatch:outcome", row.outcome.value),
        ("cmspatch:state", row.state),
        ("cmspatch:verified_at", row.verified_at),
        ("cmspatch:evidence_level", row.evidence_level),
        ("cmspatch:firmware_after_by", row.firmware_after_by),
        ("cmspatch:campaign", model.campaign.id),
        ("cmspatch:containment", (row.containment or {}).get("state", "")),
        ("cmspatch:contained_by", (row.containment or {}).get("by", "")),
        ("cmspatch:vitals", row.vitals[-1].get("outcome", "") if row.vitals else ""),
        ("cmspatch:survey_status", row.survey_status),
        *((_FINDINGS, f.text) for f in row.findings),
    ]
    return Component(
        type=ComponentType.DEVICE,
        name=row.model or "unknown model",
        version=row.firmware_after or row.firmware_before or None,
        bom_ref=bom_ref(row),
        manufacturer=OrganizationalEntity(name=MANUFACTURER),
        description=f"Patient monitor {row.model} serial {row.serial} at {row.site} / {row.ward} / "
        f"bed {row.bed}",
        properties=[Property(name=k, value=v) for k, v in props if v],
    )


def _survey_analysis(model: ExportModel, row: DeviceRow, cve: str) -> _Key:
    """The same statement as the CSAF survey export (``exports.survey``), in CycloneDX's words."""
    said = statement(model, row, cve)
    if said.status == KNOWN_NOT_AFFECTED:
        return (ImpactAnalysisState.NOT_AFFECTED, (), said.text, ImpactAnalysisAffectedStatus.UNAFFECTED)
    detail = said.text
    if row.containment and row.containment.get("state") not in (None, "", "networked"):
        detail = f"{detail} {_containment_text(row.containment)}"
    if said.status == KNOWN_AFFECTED:
        responses = (_R.WORKAROUND_AVAILABLE, _R.UPDATE) if row.contained else (_R.UPDATE,)
        return ImpactAnalysisState.EXPLOITABLE, responses, detail, ImpactAnalysisAffectedStatus.AFFECTED
    return ImpactAnalysisState.IN_TRIAGE, (), detail, ImpactAnalysisAffectedStatus.UNKNOWN


def _analysis(model: ExportModel, row: DeviceRow, cve: str) -> _Key:
    if model.campaign.mode != "patch":
        return _survey_analysis(model, row, cve)
    state, responses, detail, status = _patch_analysis(model, row, cve)
    if row.level(cve):  # how the verdict was established, in the detail every reader sees
        detail = f"{detail} Evidence level {row.level(cve)}: {DESCRIPTION[EvidenceLevel(row.level(cve))]}."
    return state, responses, detail, status


def _patch_analysis(model: ExportModel, row: DeviceRow, cve: str) -> _Key:
    verdict = row.verdict(cve)
    if verdict == "fixed":
        return (
            ImpactAnalysisState.RESOLVED,
            (),
            f"Verified fixed after installing "
            f"{model.campaign.target_version or 'the fix'} (campaign {model.campaign.id}).",
            ImpactAnalysisAffectedStatus.UNAFFECTED,
        )
    _category, detail = _action(model, row, verdict)
    if row.containment and row.containment.get("state") not in (None, "", "networked"):
        detail = f"{detail} {_containment_text(row.containment)}"
    responses = ((_R.WORKAROUND_AVAILABLE, _R.UPDATE) if row.outcome is Outcome.DEFERRED or row.contained
                 else (_R.UPDATE,))
    return ImpactAnalysisState.EXPLOITABLE, responses, detail, ImpactAnalysisAffectedStatus.AFFECTED


def _vulnerabilities(model: ExportModel) -> list[Vulnerability]:
    result: list[Vulnerability] = []
    when = _time(model.generated_at)
    for cve in CVE_IDS:
        groups: dict[_Key, list[DeviceRow]] = defaultdict(list)
        for row in model.devices:
            groups[_analysis(model, row, cve)].append(row)
        for index, (key, rows) in enumerate(
            sorted(groups.items(), key=lambda kv: (kv[0][0].value, kv[0][2]))
        ):
            state, responses, detail, status = key
            targets = [
                BomTarget(
                    ref=bom_ref(r),
                    versions=[
                        BomTargetVersionRange(
                            version=r.firmware_after or r.firmware_before or "unknown", status=status
                        )
                    ],
                )
                for r in rows
            ]
            result.append(
                Vulnerability(
                    bom_ref=f"{cve}/{index + 1}",
                    id=cve,
                    source=VulnerabilitySource(
                        name="NVD", url=XsUri(f"https://nvd.nist.gov/vuln/detail/{cve}")
                    ),
                    references=[
                        VulnerabilityReference(
                            id="ICSMA-25-030-01",
                            source=VulnerabilitySource(name="CISA", url=XsUri(ADVISORY_URL)),
                        )
                    ],
                    description=CVE_TEXT[cve][1],
                    workaround=ISOLATE if state not in (ImpactAnalysisState.RESOLVED,
                                                        ImpactAnalysisState.NOT_AFFECTED) else None,
                    analysis=VulnerabilityAnalysis(
                        state=state, responses=responses or None, detail=detail, last_updated=when,
                        # shown absent by every required check: the backdoor's code is not on the unit
                        justification=ImpactAnalysisJustification.CODE_NOT_PRESENT
                        if state is ImpactAnalysisState.NOT_AFFECTED else None,
                    ),
                    affects=targets,
                )
            )
    return result


def cyclonedx_bom(model: ExportModel) -> Bom:
    metadata = BomMetaData(
        timestamp=_time(model.generated_at),
        manufacturer=OrganizationalEntity(name=model.publisher),
        properties=[
            Property(name="cmspatch:campaign", value=model.campaign.id),
            Property(name="cmspatch:chain_head", value=model.chain_head),
            Property(name="cmspatch:chain_records", value=str(model.chain_records)),
            Property(name="cmspatch:package_sha256", value=model.campaign.package_sha256 or "unknown"),
            Property(name="cmspatch:operator", value=model.campaign.operator or "unknown"),
            Property(name="cmspatch:mode", value=model.campaign.mode),
            *(Property(name="cmspatch:manifest_signer", value=n) for n in model.campaign.signer_names()),
        ],
    )
    serial = uuid.uuid5(uuid.NAMESPACE_URL, f"cmspatch:{model.campaign.id}:{model.chain_head}")
    return Bom(
        serial_number=serial,
        metadata=metadata,
        components=[_component(model, row) for row in model.devices],
        vulnerabilities=_vulnerabilities(model),
    )


def validate_cyclonedx(data: str) -> list[str]:
    """Problems against the official CycloneDX 1.6 JSON schema bundled with cyclonedx-python-lib."""
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(data, all_errors=True)
    if errors is None:
        return []
    return [str(getattr(e, "data", e)) for e in errors]


def render_cyclonedx(model: ExportModel) -> bytes:
    if not model.devices:
        raise ExportError("the campaign has no monitors: a VEX document would state nothing", reason="empty")
    text = JsonV1Dot6(cyclonedx_bom(model)).output_as_string(indent=2)
    problems = validate_cyclonedx(text)
    if problems:
        raise ExportError(
            "the CycloneDX document would not validate: " + "; ".join(problems[:3]),
            reason="cyclonedx-invalid",
        )
    return (text + "\n").encode("utf-8")
