"""Exports of a journal the real engine wrote, patching an emulated fleet over SSH (no hand-made events).

The unit tests build journals by hand from the event contract; this checks the contract against the
engine that actually writes it: every format renders, both VEX documents validate against the official
schemas, and what they state matches what the fleet went through.
"""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.exports.csaf import product_id, render_csaf
from orchestrator.exports.csv import render_csv
from orchestrator.exports.cyclonedx import render_cyclonedx, validate_cyclonedx
from orchestrator.exports.html import render_html
from orchestrator.exports.json import render_json
from orchestrator.exports.model import Outcome, build_model
from orchestrator.exports.schemas import csaf_validator
from tests.integration.engine_rig import rig


def test_a_real_campaign_exports_to_every_format_and_states_what_happened(tmp_path: Path) -> None:
    with rig(tmp_path, monitors=3) as r, r.journal() as journal:
        failing = r.fleet.monitors[2]
        failing.inject("install-fail")
        r.engine(journal).run(auto_approve=True)
        records = list(journal.records())
        head = journal.head()
    model = build_model(records, publisher="Ospedale Nord")
    assert model.chain_head == head
    outcomes = {d.name: d.outcome for d in model.devices}
    assert outcomes[failing.name] is Outcome.FAILED
    patched = [d for d in model.devices if d.name != failing.name]
    assert all(d.outcome is Outcome.PATCHED for d in patched), outcomes
    assert all(d.evidence and d.verified_at and d.firmware_after for d in patched)

    csaf = json.loads(render_csaf(model))
    assert not list(csaf_validator().iter_errors(csaf))
    for vuln in csaf["vulnerabilities"]:
        assert set(vuln["product_status"]["fixed"]) == {product_id(d) for d in patched}
        assert vuln["product_status"]["known_affected"] == [
            product_id(next(d for d in model.devices if d.name == failing.name))
        ]
    cdx = render_cyclonedx(model).decode()
    assert validate_cyclonedx(cdx) == []
    rows = render_csv(model).decode().splitlines()
    assert len(rows) == 4 and all(head in row for row in rows[1:])
    document = json.loads(render_json(model))
    assert document["chain"]["head"] == head and all(d["timeline"] for d in document["devices"])
    assert b"https://" not in render_html(model)
    # the manifest's signers by the name and role the trust policy gives them, never as bare key ids
    names = model.campaign.signer_names()
    assert names == ("demo hospital-biomed (hospital-biomed)", "demo hospital-security (hospital-security)")
    assert names[0] in rows[1] and document["campaign"]["package"]["signed_by"][0]["owner"].startswith("demo")
