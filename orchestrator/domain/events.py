"""The event stream: the one contract between the engine, the journal and every view.

The engine emits ``Event`` values; the journal appends them (hash-chained) and hands back
``JournalRecord``s; the CLI, the TUI and the exports only ever read these. ``data`` is a JSON-ready
mapping whose keys per kind are listed below, so views can be written without reading engine code.

Payloads by kind (device = inventory host name; all strings unless noted):

  campaign-created   {package_name, package_sha256, manifest_sha256, target_version, signers: [key ids],
                      waves: [[device, ...], ...], policy: {...}, operator, inventory: path,
                      devices: {name: {model, serial, site, ward, bed, asset_tag, firmware, delivery}}}
  wave-started       {wave: int (0-based), devices: [...]}
  wave-finished      {wave, counts: {state: n}}
  gate-waiting       {wave: next wave index}
  gate-approved      {wave, approver}
  state-changed      device; {from, to, reason, wave, attempt?, sha256? (to uploaded: hash seen on device)}
  attempt            device; {step, attempt: int, outcome: "ok"|"retry"|"error", error_reason?, error?}
  firmware-read      device; {version, when: "before"|"after"|"check" (resume: was the install applied?)}
  boot-identity      device; {when: "before"|"after"|"resume", identity: BootIdentity.to_dict(), marker
                      (the marker written before the reboot), decision?: BootDecision.to_dict() (after,
                      resume: did it reboot?)}                                      (domain.boot)
  check-result       device; {evidence: Evidence.to_dict(), cves: [cve ids]}
  verdict            device; CveVerdict.to_dict(): {cve, verdict, level, reason, evidence}; ``level`` is how
                      it was established, "device+network" | "bench" | "recorded" (domain.evidence; absent
                      in journals written before levels: "device+network")
  unattributed-contact  no device; {watched: the monitor whose network checks they made inconclusive,
                      total: int, contacts: [{at, source, mac, target, protocol, kind, summary, sha256,
                      why, since, until}, ...] (the first 100)}   (contacts with the indicator range
                      that fit no monitor, seen while ``watched`` was verified: domain.attribution)
  work-order         device; {order: {...}, files: [paths written]}       (manual path)
  technician-confirmed device; {technician, note, version?}
  trigger-exercised  device; {trigger: "menu-update"|"boot-key", by}
  trigger-requested  device; {trigger, instructions, timeout: seconds (float)}   (a person must act)
  trigger-answered   device; {trigger, by, done: bool, note}   (done false: the technician could not)
  campaign-paused / campaign-resumed  {by}
  campaign-halted    {reason, rule, failed: int, executed: int}
  campaign-aborted   {by, reason}
  campaign-finished  {counts: {state: n}}
  survey-started     {mode: "survey"|"verify", operator, inventory: path, limit, started_at, window: float,
                      exercise_triggers: bool, network: "sinkhole <prefix>"|"bench sinkhole"|"pcap <file>"|
                      "none", udp_probe: bool, expected_version, package_sha256,
                      devices: {name: {...as in campaign-created}}}    (header of a survey/verify run)
  survey             device; {status: "vulnerable"|"unproven"|"fixed"|"unknown", affected: bool,
                      reasons: [...], model, firmware, reachable: bool}   (survey/verify runs)
  A survey/verify run (campaign "survey-..." / "verify-...") ends with campaign-finished whose counts are
  per survey status.
  vitals-check       device; {outcome: "within-tolerance"|"tampering-suspected"|"incomplete", readings:
                      [{parameter, label, set_to, displayed, tolerance, unit, within}], mismatches,
                      not_checked, technician, simulator, model, serial, run}  (one record per check;
                      simulator settings and displayed values, never patient data; domain.vitals)
  containment        device; {state: "networked"|"isolated"|"disconnected"|"clinical-use", how, by,
                      physician (clinical-use), note, capture: {sha256, packets, indicator_packets,
                      first, last} | None}   (cmspatch contain record; domain.containment)
  bench-started      device; {technician, address, address_from: "option"|"inventory"|"first-packet"|"",
                      mac, mac_from, observers: ["sinkhole <prefix>"|"bench sinkhole"|"pcap <file>", ...],
                      window: float, networking_removed: bool, udp_probe_ports: [int], holder}
                      (cmspatch bench: a hands-on unit's bench session begins; domain.bench)
  bench-step         device; {step: "on-bench"|"patient-simulator"|"menu-update"|"boot-key"|"stop-capture"
                      (the last: with a capture, once the window is over), by, done: bool,
                      note, asked_at, answered_at, elapsed: float (s since bench-started)} (+ on-bench:
                      address, mac, first_packets: [{at, source, target, kind, summary}])
  bench-finished     device; {outcome: "patched"|"vulnerable"|"inconclusive", level: "bench", reason,
                      verdicts: {cve: verdict}, silent: bool|None (nothing at all was sent), watched: float,
                      address, mac, capture: {path, sha256, packets, first_packet, last_packet, senders:
                      {address: packets}, sender_macs: {address: mac}}|None (the capture read, if any)}
                      (its check-result and verdict records precede it, same campaign)
  vitals-check and containment belong to the pseudo-campaign "device-records" (domain.status)
  log                {level, message}
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from orchestrator.domain.devices import Device


class EventKind(StrEnum):
    CAMPAIGN_CREATED = "campaign-created"
    WAVE_STARTED = "wave-started"
    WAVE_FINISHED = "wave-finished"
    GATE_WAITING = "gate-waiting"
    GATE_APPROVED = "gate-approved"
    STATE_CHANGED = "state-changed"
    ATTEMPT = "attempt"
    FIRMWARE_READ = "firmware-read"
    BOOT_IDENTITY = "boot-identity"
    CHECK_RESULT = "check-result"
    VERDICT = "verdict"
    UNATTRIBUTED_CONTACT = "unattributed-contact"
    WORK_ORDER = "work-order"
    TECHNICIAN_CONFIRMED = "technician-confirmed"
    TRIGGER_EXERCISED = "trigger-exercised"
    TRIGGER_REQUESTED = "trigger-requested"
    TRIGGER_ANSWERED = "trigger-answered"
    CAMPAIGN_PAUSED = "campaign-paused"
    CAMPAIGN_RESUMED = "campaign-resumed"
    CAMPAIGN_HALTED = "campaign-halted"
    CAMPAIGN_ABORTED = "campaign-aborted"
    CAMPAIGN_FINISHED = "campaign-finished"
    SURVEY = "survey"
    SURVEY_STARTED = "survey-started"
    VITALS_CHECK = "vitals-check"
    CONTAINMENT = "containment"
    BENCH_STARTED = "bench-started"
    BENCH_STEP = "bench-step"
    BENCH_FINISHED = "bench-finished"
    LOG = "log"


@dataclass(frozen=True)
class Event:
    """Something that happened, before the journal has numbered and chained it."""

    campaign: str
    kind: EventKind
    data: dict[str, Any] = field(default_factory=dict)
    device: str | None = None
    at: str = ""  # ISO-8601 UTC; the journal fills it in from its clock when empty


@dataclass(frozen=True)
class JournalRecord:
    """An event as stored: numbered, timestamped, and chained to the one before it."""

    seq: int
    campaign: str
    kind: EventKind
    device: str | None
    at: str
    data: dict[str, Any]
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "campaign": self.campaign,
            "kind": self.kind.value,
            "device": self.device,
            "at": self.at,
            "data": self.data,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def device_header(device: Device) -> dict[str, Any]:
    """One monitor as a run's header records it (``campaign-created`` and ``survey-started``)."""
    return {"model": device.model, "serial": device.serial, "site": device.site, "ward": device.ward,
            "bed": device.bed, "asset_tag": device.asset_tag, "firmware": device.firmware,
            "delivery": device.delivery.value}


GENESIS_HASH = "0" * 64


def canonical_json(value: Any) -> bytes:
    """The exact bytes that are hashed and signed: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def chain_hash(prev_hash: str, seq: int, campaign: str, kind: str, device: str | None, at: str,
               data: dict[str, Any]) -> str:
    """Hash of one record, covering the previous record's hash: editing any record breaks the chain."""
    body = canonical_json(
        {"prev": prev_hash, "seq": seq, "campaign": campaign, "kind": kind, "device": device, "at": at,
         "data": data}
    )
    return hashlib.sha256(body).hexdigest()
