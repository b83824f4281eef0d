"""``cmspatch import``: bring a campaign run by AWX / ansible-runner into the cmspatch journal.

Reads the artifact directory of a job of ``playbooks/patch.yml`` (``job_events/*.json``, ``status``,
``rc``; AWX's job event export has the same shape), maps it with ``awx_mapping.map_job`` and appends
what the journal does not hold yet. The campaign then shows in ``status``, the TUI and the exports
like one the engine ran.

Idempotent: every mapped event carries the key of the job event it came from; keys already in the
campaign's records are skipped, so importing a job twice adds nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.adapters.awx_mapping import JobInfo, map_job
from orchestrator.adapters.strict_files import load_json_file
from orchestrator.domain.inventory import Inventory
from orchestrator.domain.strict_load import JOB_EVENT, StrictLoadError
from orchestrator.errors import UsageError
from orchestrator.ports import Journal

_SAFE_ID = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class ImportResult:
    campaign: str
    job: str
    status: str
    mapped: int  # events the job stands for
    added: int  # events appended now (0 when the job was imported before)
    hosts: int

    def to_dict(self) -> dict[str, Any]:
        return {"campaign": self.campaign, "job": self.job, "status": self.status, "mapped": self.mapped,
                "added": self.added, "hosts": self.hosts}


def find_job_dir(path: Path) -> Path:
    """The directory holding ``job_events``: the path itself, or ``artifacts/<ident>`` below it."""
    if (path / "job_events").is_dir():
        return path
    candidates = sorted(p.parent for p in path.glob("artifacts/*/job_events") if p.is_dir())
    candidates += sorted(p.parent for p in path.glob("*/job_events") if p.is_dir())
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise UsageError(f"{path}: no job_events/ directory (expected an ansible-runner or AWX job artifact "
                         "directory)", reason="import-not-a-job")
    raise UsageError(f"{path}: several jobs inside ({', '.join(c.name for c in candidates)}); name one",
                     reason="import-ambiguous")


def read_events(job_dir: Path) -> list[dict[str, Any]]:
    events = []
    for file in sorted((job_dir / "job_events").glob("*.json")):
        try:  # the strict loader: size, UTF-8, duplicate keys and depth, as for every input file
            value = load_json_file(file, JOB_EVENT)
        except StrictLoadError as exc:
            raise UsageError(f"not a readable job event: {exc.message} ({exc.reason})",
                             reason="import-bad-event") from exc
        if isinstance(value, dict):
            events.append(value)
    return events


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


def job_info(job_dir: Path, *, inventory: Inventory | None, inventory_path: str = "",
             operator: str = "awx") -> JobInfo:
    rc_text = _read_text(job_dir / "rc")
    devices: dict[str, dict[str, Any]] = {}
    if inventory is not None:
        for d in inventory.devices:
            devices[d.name] = {"model": d.model, "serial": d.serial, "site": d.site, "ward": d.ward,
                               "bed": d.bed, "asset_tag": d.asset_tag, "firmware": d.firmware,
                               "delivery": "ansible"}
    return JobInfo(ident=job_dir.name, status=_read_text(job_dir / "status"),
                   rc=int(rc_text) if rc_text.lstrip("-").isdigit() else None,
                   operator=operator, inventory=inventory_path, devices=devices)


def import_job(path: Path, journal: Journal, *, campaign: str | None = None,
               inventory: Inventory | None = None, inventory_path: str = "",
               operator: str = "awx") -> ImportResult:
    job_dir = find_job_dir(path)
    events = read_events(job_dir)
    if not events:
        raise UsageError(f"{job_dir}: the job has no events", reason="import-empty")
    info = job_info(job_dir, inventory=inventory, inventory_path=inventory_path, operator=operator)
    campaign_id = campaign or "awx-" + _SAFE_ID.sub("-", info.ident)
    mapped = map_job(events, info, campaign=campaign_id)
    seen: set[str] = set()
    if campaign_id in journal.campaigns():
        seen = {str(r.data.get("source")) for r in journal.records(campaign_id)}
        created = next((e for e in mapped if e.data.get("source", "").endswith(":created")), None)
        if created is not None and created.data["source"] not in seen:
            raise UsageError(f"campaign {campaign_id} exists and was not imported from job {info.ident}; "
                             "choose another --campaign", reason="import-campaign-exists")
    added = 0
    for event in mapped:
        if event.data.get("source") in seen:
            continue
        journal.append(event)
        added += 1
    hosts = len(next(e for e in mapped if e.kind.value == "campaign-created").data["devices"])
    return ImportResult(campaign=campaign_id, job=info.ident, status=info.status, mapped=len(mapped),
                        added=added, hosts=hosts)
