"""The JSON export's versioned JSON Schema: a valid schema, met by real exports, and able to say no."""

from __future__ import annotations

import copy
import json

import pytest
from jsonschema import Draft202012Validator

from orchestrator.errors import ExportError
from orchestrator.exports import json as json_export
from orchestrator.exports.json import FORMAT_VERSION, export_document, render_json, validate_json_export
from orchestrator.exports.model import build_model
from orchestrator.exports.schemas import EXPORT_SCHEMA, load
from tests.unit.test_export_journal import build_campaign
from tests.unit.test_export_survey import _survey


def test_the_schema_is_a_valid_draft_2020_12_schema_for_this_format_version() -> None:
    schema = load(EXPORT_SCHEMA)
    Draft202012Validator.check_schema(schema)
    assert schema["properties"]["format_version"] == {"const": FORMAT_VERSION}
    assert f"cmspatch-export-{FORMAT_VERSION}.json" == EXPORT_SCHEMA


def test_real_exports_of_a_campaign_and_of_a_survey_meet_the_schema() -> None:
    for model in (build_model(build_campaign()), _survey()):
        doc = json.loads(render_json(model))
        assert validate_json_export(doc) == []


def test_waves_are_numbered_from_one() -> None:
    doc = json.loads(render_json(build_model(build_campaign())))
    assert [w["wave"] for w in doc["waves"]] == [1, 2, 3]
    assert {d["wave"] for d in doc["devices"]} <= {1, 2, 3}
    wrong = copy.deepcopy(doc)
    wrong["waves"][0]["wave"] = 0
    assert any("waves/0/wave" in p for p in validate_json_export(wrong))


def test_a_document_missing_a_field_or_with_a_foreign_outcome_is_refused() -> None:
    doc = export_document(build_model(build_campaign()))
    missing = copy.deepcopy(doc)
    del missing["devices"][0]["serial"]
    assert any("'serial' is a required property" in p for p in validate_json_export(missing))
    foreign = copy.deepcopy(doc)
    foreign["devices"][0]["outcome"] = "? unsure"
    assert validate_json_export(foreign)


def test_an_export_that_would_not_meet_its_schema_is_refused_not_written(monkeypatch: pytest.MonkeyPatch
                                                                         ) -> None:
    original = json_export.export_document
    monkeypatch.setattr(json_export, "export_document",
                        lambda model: {**original(model), "format_version": 1})
    with pytest.raises(ExportError) as exc:
        render_json(build_model(build_campaign()))
    assert exc.value.reason == "json-invalid"


def test_every_format_names_the_manifest_signers_by_owner_and_role_not_key_id() -> None:
    from orchestrator.cli.export import render

    model = build_model(build_campaign())
    name = "A. Rossi, Biomedical Engineering (hospital-biomed)"
    assert model.campaign.signer_names() == ("Contec Medical Systems (vendor)", name)
    for fmt in ("csv", "json", "html", "csaf", "cyclonedx"):
        assert "A. Rossi, Biomedical Engineering" in render(model, fmt).decode(), fmt
    old = build_model(build_campaign())
    from dataclasses import replace

    bare = replace(old.campaign, signed_by=())  # a journal from before names were recorded
    assert bare.signer_names()[0] == f"key {'9f2c' * 4} (name not recorded in this journal)"
