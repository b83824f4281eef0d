"""Deterministic journal records for the TUI's unit, snapshot and benchmark runs.

Real campaigns are driven in ``test_flows.py``; these records only exercise the view: the payloads
follow ``orchestrator.domain.events`` exactly, so they are what the engine writes.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from typing import Any

from orchestrator.domain.devices import CredentialRef, DeliveryPath, Device
from orchestrator.domain.events import EventKind, JournalRecord
from orchestrator.domain.indicators import ALL_CVES, MODELS

SITES = (("North General", ("ICU", "Cardiology", "ER")), ("South Clinic", ("Ward A", "Ward B")))


def make_devices(n: int) -> list[Device]:
    out: list[Device] = []
    for i in range(n):
        site, wards = SITES[i % len(SITES)]
        ward = wards[(i // len(SITES)) % len(wards)]
        manual = i % 25 == 24
        out.append(Device(
            name=f"mon-{i:04d}", model=MODELS[i % len(MODELS)], serial=f"SN-{i:06d}", site=site, ward=ward,
            bed=f"{i % 40 + 1:02d}", address="" if manual else f"127.77.{i // 250}.{i % 250 + 1}", port=2222,
            user="service", credential=CredentialRef(key_file="keys/fleet_ed25519"),
            host_key=None if manual else "SHA256:x",
            delivery=DeliveryPath.MANUAL if manual else DeliveryPath.SSH,
            firmware="CMS7.820.075.08/0.74(0.75)",
        ))
    return out


class Recorder:
    """Numbers records like the journal does (seq from 1, fixed clock so snapshots are stable)."""

    def __init__(self, campaign: str = "c-demo") -> None:
        self.campaign = campaign
        self.seq = 0
        self._lock = threading.Lock()  # the benchmark numbers records from two threads, like the journal

    def rec(self, kind: EventKind, data: dict[str, Any], device: str | None = None) -> JournalRecord:
        with self._lock:
            self.seq += 1
            seq = self.seq
        at = f"2026-11-24T20:{(seq // 60) % 60:02d}:{seq % 60:02d}Z"
        return JournalRecord(seq, self.campaign, kind, device, at, data, "0" * 64, f"{seq:064x}")

    def created(self, devices: list[Device], waves: list[list[str]], **policy: Any) -> JournalRecord:
        return self.rec(EventKind.CAMPAIGN_CREATED, {
            "package_name": "cms-fix-2.1.0.tar.gz", "package_sha256": "ab" * 32, "manifest_sha256": "cd" * 32,
            "target_version": "CMS7.820.200.01/2.10(2.10)", "signers": ["k-biomed", "k-security"],
            "waves": waves, "policy": {"max_failures": 3, **policy}, "operator": "a.rossi",
            "inventory": "inventory.yml",
            "devices": {d.name: {"model": d.model, "serial": d.serial, "site": d.site, "ward": d.ward,
                                 "bed": d.bed, "asset_tag": d.asset_tag, "firmware": d.firmware,
                                 "delivery": d.delivery.value} for d in devices},
        })

    def state(self, device: str, old: str, new: str, wave: int, reason: str = "") -> JournalRecord:
        data = {"from": old, "to": new, "reason": reason, "wave": wave}
        return self.rec(EventKind.STATE_CHANGED, data, device)

    def verdicts(self, device: str, verdict: str = "fixed") -> list[JournalRecord]:
        return [self.rec(EventKind.VERDICT, {
            "cve": cve.value, "verdict": verdict, "reason": f"{cve.value} checked",
            "evidence": [{"check": "binary-mount-string", "source": "device",
                          "observed_at": "2026-11-24T20:00:00Z",
                          "outcome": "pass" if verdict == "fixed" else "fail",
                          "summary": "no mount string in /opt/cms/bin/monitor", "sha256": "ef" * 32,
                          "details": {}}],
        }, device) for cve in ALL_CVES]


PATH = ("pending", "uploading", "uploaded", "installing", "rebooting", "verifying", "patched")


def patch_records(r: Recorder, device: str, wave: int, *, fail: bool = False) -> Iterator[JournalRecord]:
    """One monitor's life from pending to patched (or failed at install), as the engine records it."""
    for old, new in itertools.pairwise(PATH):
        if fail and new == "rebooting":
            yield r.state(device, old, "failed", wave, "installer exited 1: not enough space")
            return
        if new == "patched":
            after = {"version": "CMS7.820.200.01/2.10(2.10)", "when": "after"}
            yield r.rec(EventKind.FIRMWARE_READ, after, device)
            yield from r.verdicts(device)
        yield r.state(device, old, new, wave)


def demo_records(n: int = 12) -> tuple[list[Device], list[JournalRecord]]:
    """A small campaign at its first gate: canary patched, one deferred, one failed, wave 2 waiting."""
    devices = make_devices(n)
    names = [d.name for d in devices]
    waves = [names[:1], names[1:5], names[5:]]
    r = Recorder()
    out = [r.created(devices, waves)]
    out.append(r.rec(EventKind.WAVE_STARTED, {"wave": 0, "devices": waves[0]}))
    out += list(patch_records(r, names[0], 0))
    out.append(r.rec(EventKind.WAVE_FINISHED, {"wave": 0, "counts": {"patched": 1}}))
    out.append(r.rec(EventKind.GATE_WAITING, {"wave": 1}))
    out.append(r.rec(EventKind.GATE_APPROVED, {"wave": 1, "approver": "a.rossi"}))
    out.append(r.rec(EventKind.WAVE_STARTED, {"wave": 1, "devices": waves[1]}))
    out.append(r.state(names[1], "pending", "deferred", 1, "patient connected"))
    out += list(patch_records(r, names[2], 1, fail=True))
    out += list(patch_records(r, names[3], 1))
    out += list(patch_records(r, names[4], 1))
    counts = {"patched": 2, "failed": 1, "deferred": 1}
    out.append(r.rec(EventKind.WAVE_FINISHED, {"wave": 1, "counts": counts}))
    out.append(r.rec(EventKind.GATE_WAITING, {"wave": 2}))
    return devices, out
