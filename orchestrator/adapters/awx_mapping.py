"""An AWX / ansible-runner job of ``playbooks/patch.yml``, mapped onto cmspatch campaign events.

Pure: takes the job's event dicts (as ``job_events/*.json`` hold them) and returns ``Event`` values;
no file, no journal, no clock. ``awx_import`` does the reading and the writing.

Each Event carries ``data["source"]``: a key naming the job event (or the job itself) it came from.
Importing the same job twice therefore adds nothing (the importer skips keys already journalled), and
importing a job again after it progressed adds only what is new. The per-host state machine is
driven through ``lifecycle.check_transition``, so an imported campaign is as well-formed as one the
engine ran; intermediate states the playbook passes through (uploaded, installing, verifying) are
recorded in order with the timestamp of the task result that proves them.

Deliberately left out: verdicts per CVE. The playbook proves the version (before/after); the
evidence-backed verdicts need the sinkhole and the checks of ``cmspatch verify``, which a site runs
against the imported campaign's monitors like any other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from orchestrator.adapters.ansible_events import TaskResult, classify_unreachable, task_result
from orchestrator.domain.events import Event, EventKind
from orchestrator.domain.lifecycle import TERMINAL, DeviceState, check_transition

S = DeviceState
UPLOAD_TASKS = frozenset({
    "cmspatch:ssh-options", "cmspatch:package-size", "cmspatch:remote-size", "cmspatch:free-space",
    "cmspatch:disk-full", "cmspatch:existing-hash", "cmspatch:discard-stale", "cmspatch:upload",
    "cmspatch:upload-refused", "cmspatch:hash-check", "cmspatch:remove-corrupt", "cmspatch:upload-fresh",
    "cmspatch:hash-check-again", "cmspatch:hash-mismatch",
})
_HOST_EVENTS = frozenset({"runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped",
                          "runner_on_start"})
FINISHED_STATUSES = frozenset({"successful", "failed"})


@dataclass(frozen=True)
class JobInfo:
    """What the importer knows about the job beside its events."""

    ident: str  # artifact directory name or AWX job id
    status: str = ""  # ansible-runner's ``status`` file: successful | failed | timeout | canceled
    rc: int | None = None
    operator: str = "awx"
    inventory: str = ""
    devices: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # inventory facts per host


def normal_time(created: str) -> str:
    """ansible-runner's ``created`` (naive UTC ISO) in the journal's form (``...Z``)."""
    if not created:
        return ""
    try:
        parsed = datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return ""
    return parsed.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


class _Mapper:
    def __init__(self, campaign: str, job: JobInfo) -> None:
        self.campaign = campaign
        self.job = job
        self.out: list[Event] = []
        self.state: dict[str, DeviceState] = {}
        self.waves: list[list[str]] = []
        self.attempts: Counter[str] = Counter()

    def emit(self, kind: EventKind, data: dict[str, Any], *, source: str, at: str,
             device: str | None = None) -> None:
        self.out.append(Event(campaign=self.campaign, kind=kind, device=device, at=at,
                              data={**data, "source": source}))

    def move(self, host: str, target: DeviceState, reason: str, result: TaskResult, n: int) -> None:
        current = self.state.setdefault(host, S.PENDING)
        if current is target or current in TERMINAL:
            return
        check_transition(host, current, target)
        self.state[host] = target
        data: dict[str, Any] = {"from": current.value, "to": target.value, "reason": reason,
                                "wave": self.wave_of(host)}
        self.emit(EventKind.STATE_CHANGED, data, source=f"{result.uuid}#{n}",
                  at=normal_time(result.at), device=host)

    def wave_of(self, host: str) -> int:
        for index, wave in enumerate(self.waves):
            if host in wave:
                return index
        return 0

    def attempt(self, host: str, step: str, result: TaskResult, outcome: str, error_reason: str = "") -> None:
        self.attempts[f"{host}/{step}"] += 1
        data: dict[str, Any] = {"step": step, "attempt": self.attempts[f"{host}/{step}"], "outcome": outcome}
        if error_reason:
            data["error_reason"] = error_reason
            data["error"] = (result.message or result.stderr)[:500]
        self.emit(EventKind.ATTEMPT, data, source=f"{result.uuid}#attempt", at=normal_time(result.at),
                  device=host)

    def result(self, r: TaskResult) -> None:
        host, task = r.host, r.task
        if r.status == "unreachable" and not r.ignored:
            error = classify_unreachable(r.message, host=host)
            self.attempt(host, task.removeprefix("cmspatch:"), r, "error", error.reason)
            self.to_failed(host, "unreachable" if error.reason in {"connection-refused", "timeout",
                                                                   "unreachable"} else error.reason, r)
            return
        if r.status == "skipped":
            return
        if task == "cmspatch:firmware-before" and r.status == "ok":
            self.emit(EventKind.FIRMWARE_READ, {"version": r.stdout.strip(), "when": "before"},
                      source=r.uuid, at=normal_time(r.at), device=host)
        elif task in UPLOAD_TASKS:
            self.move(host, S.UPLOADING, "upload started", r, 0)
            if task in {"cmspatch:upload", "cmspatch:upload-fresh"}:
                self.attempt(host, "upload", r, "ok" if r.rc == 0 else "retry")
        elif task == "cmspatch:install":
            self.move(host, S.UPLOADED, "sha256 on the monitor matches", r, 0)
            self.move(host, S.INSTALLING, "cms-install started", r, 1)
            self.attempt(host, "install", r, "ok" if r.status == "ok" else "error",
                         "" if r.status == "ok" else "install-failed")
        elif task == "cmspatch:reboot":
            self.move(host, S.REBOOTING, "reboot issued", r, 0)
        elif task == "cmspatch:firmware-after" and r.rc is not None:
            self.move(host, S.VERIFYING, "monitor is back", r, 0)
            self.emit(EventKind.FIRMWARE_READ, {"version": r.stdout.strip(), "when": "after"},
                      source=r.uuid, at=normal_time(r.at), device=host)
        elif task == "cmspatch:outcome" and r.outcome is not None:
            self.outcome(host, r)

    def outcome(self, host: str, r: TaskResult) -> None:
        assert r.outcome is not None
        outcome, reason = r.outcome
        if outcome == "deferred":
            # The clinical gate also holds a host right before its install (uploaded, hash checked: the
            # engine defers it from there too) and before its reboot (installed: left as it is, like the
            # engine does, for the next run to reboot).
            current = self.state.setdefault(host, S.PENDING)
            if current in (S.INSTALLING, S.REBOOTING):
                return
            if current is S.UPLOADING:
                self.move(host, S.UPLOADED, "sha256 on the monitor matches", r, 1)
            self.move(host, S.DEFERRED, reason or "clinical-use", r, 0)
        elif outcome == "already-patched":
            self.move(host, S.SKIPPED, reason or "already-at-target", r, 0)
        elif outcome == "patched":
            self.move(host, S.PATCHED, reason or "version-confirmed", r, 0)
        elif outcome == "failed":
            self.to_failed(host, reason or "failed", r)

    def to_failed(self, host: str, reason: str, r: TaskResult) -> None:
        current = self.state.setdefault(host, S.PENDING)
        if current in TERMINAL or current is S.DEFERRED:
            return  # a deferred host is never turned into a failure by a later event
        if current is S.REBOOTING and reason == "version-mismatch":
            self.move(host, S.VERIFYING, "monitor is back", r, 1)
        self.move(host, S.FAILED, reason, r, 2)


def map_job(events: Iterable[Mapping[str, Any]], job: JobInfo, *, campaign: str) -> list[Event]:
    """All campaign events a job of ``playbooks/patch.yml`` stands for, in the job's order."""
    ordered = sorted((dict(e) for e in events), key=lambda e: int(e.get("counter") or 0))
    mapper = _Mapper(campaign, job)
    params: dict[str, Any] = {}
    hosts: list[str] = []
    current_wave: list[str] = []
    for event in ordered:
        kind = event.get("event")
        data = event.get("event_data") or {}
        if kind == "playbook_on_play_start" and current_wave:
            mapper.waves.append(current_wave)
            current_wave = []
        host = data.get("host") if isinstance(data, dict) else None
        if host and kind in _HOST_EVENTS and host != "localhost" and host not in hosts:
            hosts.append(host)
            current_wave.append(host)
        r = task_result(event)
        if r is not None and r.task == "cmspatch:campaign" and r.status == "ok" and not params:
            raw = (event.get("event_data") or {}).get("res", {}).get("msg")
            params = dict(raw) if isinstance(raw, dict) else {}
    if current_wave:
        mapper.waves.append(current_wave)

    first_at = normal_time(str(ordered[0].get("created", ""))) if ordered else ""
    devices = {h: dict(job.devices.get(h, {})) for h in hosts}
    for info in devices.values():
        info.setdefault("delivery", "ansible")
    mapper.emit(EventKind.CAMPAIGN_CREATED, {
        "package_name": str(params.get("package_name", "")),
        "package_sha256": str(params.get("package_sha256", "")),
        "manifest_sha256": "",
        "target_version": str(params.get("target_version", "")),
        "signers": [],
        "waves": mapper.waves,
        "policy": {"source": "ansible", "job": job.ident},
        "operator": job.operator,
        "inventory": job.inventory,
        "devices": devices,
    }, source=f"job:{job.ident}:created", at=first_at)

    started: set[int] = set()
    for event in ordered:
        r = task_result(event)
        if r is None or r.host == "localhost" or r.host not in hosts:
            continue
        wave = mapper.wave_of(r.host)
        if wave not in started:
            started.add(wave)
            mapper.emit(EventKind.WAVE_STARTED, {"wave": wave, "devices": mapper.waves[wave]},
                        source=f"job:{job.ident}:wave-{wave}", at=normal_time(r.at))
        mapper.result(r)

    if job.status in FINISHED_STATUSES:
        last_at = normal_time(str(ordered[-1].get("created", ""))) if ordered else ""
        counts = Counter(mapper.state.get(h, S.PENDING).value for h in hosts)
        for wave in sorted(started):
            wave_counts = Counter(mapper.state.get(h, S.PENDING).value for h in mapper.waves[wave])
            mapper.emit(EventKind.WAVE_FINISHED, {"wave": wave, "counts": dict(wave_counts)},
                        source=f"job:{job.ident}:wave-{wave}-finished", at=last_at)
        mapper.emit(EventKind.CAMPAIGN_FINISHED, {"counts": dict(counts), "status": job.status, "rc": job.rc},
                    source=f"job:{job.ident}:finished", at=last_at)
    return mapper.out
