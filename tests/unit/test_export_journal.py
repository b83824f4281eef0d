"""A realistic, hash-chained journal of a small campaign, shared by every export test.

Six monitors on two sites, three waves, every outcome an auditor must see: patched (SSH and hands-on),
deferred (patient connected), failed (installer error), patched-but-inconclusive, and still vulnerable
after an "insufficient" package. Secrets and a synthetic patient name are planted where careless code
would pick them up (log text, technician notes, work orders, error strings, evidence details, policy and
inventory extras): the export tests assert that none of them reaches a document.
"""

from __future__ import annotations

from typing import Any

from orchestrator.domain.events import GENESIS_HASH, EventKind, JournalRecord, chain_hash
from orchestrator.domain.indicators import ALL_CVES
from orchestrator.exports.model import verify_chain

CAMPAIGN = "c-2026-11-24-north-south"
PACKAGE_SHA = "a3" * 32
PATIENT_NAME = "Jane Synthetic-Patient"
PASSWORD = "S3cr3t-Passw0rd!"
KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"
PRIVATE_KEY = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----"
SECRETS = (PATIENT_NAME, PASSWORD, KEY_BODY, "BEGIN OPENSSH PRIVATE KEY")
OLD_FW = "CMS7.820.075.08/0.74(0.75)"
NEW_FW = "CMS7.820.200.01/1.00(1.00)"

DEVICES: dict[str, dict[str, Any]] = {
    "north-icu-bed01": {
        "model": "CMS8000",
        "serial": "CMS8K-2301-00017",
        "site": "North General",
        "ward": "ICU",
        "bed": "01",
        "asset_tag": "BME-004211",
        "firmware": OLD_FW,
        "delivery": "ssh",
    },
    "north-icu-bed02": {
        "model": "CMS8000",
        "serial": "CMS8K-2301-00018",
        "site": "North General",
        "ward": "ICU",
        "bed": "02",
        "asset_tag": "BME-004212",
        "firmware": OLD_FW,
        "delivery": "ssh",
    },
    "north-ward-bed03": {
        "model": "CMS6000",
        "serial": "CMS6K-1907-00301",
        "site": "North General",
        "ward": "Cardiology",
        "bed": "03",
        "asset_tag": "BME-004213",
        "firmware": OLD_FW,
        "delivery": "ansible",
    },
    "south-icu-bed01": {
        "model": "CMS7000",
        "serial": "CMS7K-2011-00042",
        "site": "South Hospital",
        "ward": "ICU",
        "bed": "01",
        "asset_tag": "BME-009001",
        "firmware": OLD_FW,
        "delivery": "ssh",
    },
    "south-icu-bed02": {
        "model": "MN-120",
        "serial": "MN120-2204-00007",
        "site": "South Hospital",
        "ward": "ICU",
        "bed": "02",
        "asset_tag": "BME-009002",
        "firmware": OLD_FW,
        "delivery": "ssh",
    },
    "south-ward-bed05": {
        "model": "CMS8000",
        "serial": "CMS8K-2302-00099",
        "site": "South Hospital",
        "ward": "Step-down",
        "bed": "05",
        "asset_tag": "BME-009005",
        "firmware": OLD_FW,
        "delivery": "manual",
    },
}
WAVES = [
    ["north-icu-bed01"],
    ["north-icu-bed02", "north-ward-bed03", "south-icu-bed01"],
    ["south-icu-bed02", "south-ward-bed05"],
]
# device -> CVE id -> verdict, after patching
VERDICTS: dict[str, dict[str, str]] = {
    "north-icu-bed01": {c.value: "fixed" for c in ALL_CVES},
    "south-icu-bed01": {**{c.value: "fixed" for c in ALL_CVES}, "CVE-2025-0683": "inconclusive"},
    "south-icu-bed02": {
        **{c.value: "fixed" for c in ALL_CVES},
        "CVE-2025-0626": "vulnerable",
        "CVE-2025-1204": "vulnerable",
    },
    "south-ward-bed05": {c.value: "fixed" for c in ALL_CVES},
}


class JournalBuilder:
    """Appends events the way ``SqliteJournal`` does: numbered, timestamped, chained."""

    def __init__(self, start_minute: int = 0) -> None:
        self.records: list[JournalRecord] = []
        self.minute = start_minute

    def add(
        self, kind: EventKind, data: dict[str, Any], device: str | None = None, campaign: str = CAMPAIGN
    ) -> JournalRecord:
        seq = len(self.records) + 1
        prev = self.records[-1].hash if self.records else GENESIS_HASH
        self.minute += 1
        at = f"2026-11-24T{8 + self.minute // 60:02d}:{self.minute % 60:02d}:00.000000Z"
        record = JournalRecord(
            seq=seq,
            campaign=campaign,
            kind=kind,
            device=device,
            at=at,
            data=data,
            prev_hash=prev,
            hash=chain_hash(prev, seq, campaign, kind.value, device, at, data),
        )
        self.records.append(record)
        return record

    def state(self, device: str, old: str, new: str, wave: int, reason: str = "") -> None:
        self.add(EventKind.STATE_CHANGED, {"from": old, "to": new, "reason": reason, "wave": wave}, device)


def _evidence(
    check: str, outcome: str, summary: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "check": check,
        "source": "device",
        "observed_at": "2026-11-24T09:00:00Z",
        "outcome": outcome,
        "summary": summary,
        "sha256": "5e" * 32,
        "details": details or {},
    }


def _patch(b: JournalBuilder, device: str, wave: int) -> None:
    b.state(device, "pending", "uploading", wave)
    b.add(EventKind.FIRMWARE_READ, {"version": OLD_FW, "when": "before"}, device)
    b.add(EventKind.ATTEMPT, {"step": "upload", "attempt": 1, "outcome": "ok"}, device)
    b.state(device, "uploading", "uploaded", wave)
    b.state(device, "uploaded", "installing", wave)
    b.state(device, "installing", "rebooting", wave)
    b.state(device, "rebooting", "verifying", wave)


def _verify(b: JournalBuilder, device: str, wave: int, firmware: str = NEW_FW) -> None:
    b.add(EventKind.FIRMWARE_READ, {"version": firmware, "when": "after"}, device)
    b.add(EventKind.TRIGGER_EXERCISED, {"trigger": "menu-update", "by": "cmspatch"}, device)
    verdicts = VERDICTS[device]
    mount_ok = verdicts["CVE-2025-0626"] == "fixed"
    b.add(
        EventKind.CHECK_RESULT,
        {
            "cves": ["CVE-2025-0626"],
            "evidence": _evidence(
                "monitor-mount-string",
                "pass" if mount_ok else "fail",
                "no NFS mount command in /opt/cms/bin/monitor"
                if mount_ok
                else "mount string still present in monitor",
                {
                    "command": "grep -o -E ... /opt/cms/bin/monitor",
                    "matches": 0 if mount_ok else 1,
                    "patient_name": PATIENT_NAME,
                    "password": PASSWORD,
                },
            ),
        },
        device,
    )
    b.add(
        EventKind.CHECK_RESULT,
        {
            "cves": ["CVE-2025-0683"],
            "evidence": _evidence(
                "sinkhole-window",
                "pass",
                "no contact to 202.114.4.0/24 in the observation window",
                {
                    "field_names": ["name", "birth date"],
                    "patient_record": False,
                    "raw": PATIENT_NAME,
                    "nested": {"name": PATIENT_NAME},
                    "notes": [PRIVATE_KEY],
                },
            ),
        },
        device,
    )
    for cve, verdict in verdicts.items():
        reason = {
            "fixed": "all decisive checks passed",
            "vulnerable": "mount string present",
            "inconclusive": "no patient connected during the window",
        }[verdict]
        b.add(
            EventKind.VERDICT,
            {
                "cve": cve,
                "verdict": verdict,
                "reason": reason,
                "evidence": [
                    _evidence("firmware-version", "pass", f"version is {firmware}", {"version": firmware})
                ],
            },
            device,
        )


def build_campaign(
    *, device_overrides: dict[str, dict[str, Any]] | None = None, other_campaign_after: bool = False
) -> list[JournalRecord]:
    """The journal of the sample campaign (optionally followed by another campaign's record)."""
    devices = {n: {**d, **(device_overrides or {}).get(n, {})} for n, d in DEVICES.items()}
    b = JournalBuilder()
    b.add(
        EventKind.CAMPAIGN_CREATED,
        {
            "package_name": "cms8000-fix-2025-07.tar.gz",
            "package_sha256": PACKAGE_SHA,
            "manifest_sha256": "b4" * 32,
            "target_version": NEW_FW,
            "signers": ["9f2c" * 16, "41aa" * 16],
            "signed_by": [{"keyid": "9f2c" * 16, "role": "vendor", "owner": "Contec Medical Systems"},
                          {"keyid": "41aa" * 16, "role": "hospital-biomed",
                           "owner": "A. Rossi, Biomedical Engineering"}],
            "waves": WAVES,
            "operator": "a.rossi",
            "policy": {"waves": ["1", "5", "100%"], "require_approval": True, "ansible_password": PASSWORD},
            "inventory": f"/home/a.rossi/{PASSWORD}/inventory.yml",
            "devices": {
                n: {**d, "ansible_password": PASSWORD, "ssh_key": PRIVATE_KEY} for n, d in devices.items()
            },
        },
    )
    b.add(EventKind.LOG, {"level": "info", "message": f"patient {PATIENT_NAME} on north-icu-bed02"})
    # wave 0: the canary
    b.add(EventKind.WAVE_STARTED, {"wave": 0, "devices": WAVES[0]})
    _patch(b, "north-icu-bed01", 0)
    _verify(b, "north-icu-bed01", 0)
    b.state("north-icu-bed01", "verifying", "patched", 0, "all four CVEs verified fixed")
    b.add(EventKind.WAVE_FINISHED, {"wave": 0, "counts": {"patched": 1}})
    b.add(EventKind.GATE_WAITING, {"wave": 1})
    b.add(EventKind.GATE_APPROVED, {"wave": 1, "approver": "m.bianchi"})
    # wave 1
    b.add(EventKind.WAVE_STARTED, {"wave": 1, "devices": WAVES[1]})
    b.state("north-icu-bed02", "pending", "deferred", 1, "patient connected")
    b.state("north-ward-bed03", "pending", "uploading", 1)
    b.add(
        EventKind.ATTEMPT,
        {
            "step": "install",
            "attempt": 1,
            "outcome": "error",
            "error_reason": "installer-failed",
            "error": f"cms-install: no space left; login {PASSWORD}",
        },
        "north-ward-bed03",
    )
    b.state("north-ward-bed03", "uploading", "failed", 1, "installer-failed")
    _patch(b, "south-icu-bed01", 1)
    _verify(b, "south-icu-bed01", 1)
    b.state("south-icu-bed01", "verifying", "failed", 1, "verification-inconclusive")
    b.add(EventKind.WAVE_FINISHED, {"wave": 1, "counts": {"deferred": 1, "failed": 2}})
    b.add(EventKind.GATE_WAITING, {"wave": 2})
    b.add(EventKind.GATE_APPROVED, {"wave": 2, "approver": "l.verdi"})
    # wave 2
    b.add(EventKind.WAVE_STARTED, {"wave": 2, "devices": WAVES[2]})
    _patch(b, "south-icu-bed02", 2)
    _verify(b, "south-icu-bed02", 2, firmware="CMS7.820.120.01/0.93(0.95)")
    b.state("south-icu-bed02", "verifying", "failed", 2, "backdoor-still-present")
    b.state("south-ward-bed05", "pending", "awaiting-technician", 2)
    b.add(
        EventKind.WORK_ORDER,
        {"order": {"bed": "05", "instructions": f"ask {PATIENT_NAME} to wait"}},
        "south-ward-bed05",
    )
    b.add(
        EventKind.TECHNICIAN_CONFIRMED,
        {"technician": "g.neri", "note": f"done while {PATIENT_NAME} slept"},
        "south-ward-bed05",
    )
    b.state("south-ward-bed05", "awaiting-technician", "verifying", 2)
    _verify(b, "south-ward-bed05", 2)
    b.state("south-ward-bed05", "verifying", "patched", 2, "all four CVEs verified fixed")
    b.add(EventKind.WAVE_FINISHED, {"wave": 2, "counts": {"patched": 1, "failed": 1}})
    b.add(EventKind.CAMPAIGN_FINISHED, {"counts": {"patched": 3, "failed": 2, "deferred": 1}})
    if other_campaign_after:
        b.add(EventKind.LOG, {"level": "info", "message": "another campaign"}, campaign="survey-2026-11-25")
    return b.records


def test_the_sample_journal_chain_verifies() -> None:
    records = build_campaign(other_campaign_after=True)
    verify_chain(records)
    assert records[0].prev_hash == GENESIS_HASH and records[-1].seq == len(records)
