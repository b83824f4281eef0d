"""No secret and no patient data in any export, even when careless code put them into events."""

from __future__ import annotations

import pytest

from orchestrator.cli.export import FORMATS, render
from orchestrator.exports.model import build_model
from orchestrator.exports.sanitize import details, text
from tests.unit.test_export_journal import SECRETS, build_campaign


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_planted_secret_or_patient_name_reaches_the_export(fmt: str) -> None:
    data = render(build_model(build_campaign()), fmt).decode("utf-8")
    leaked = [s for s in SECRETS if s in data]
    assert not leaked, f"{fmt} export leaks {leaked}"


def test_patient_field_names_survive_but_values_do_not() -> None:
    kept = details({"field_names": ["name", "birth date"], "patient_name": "X", "raw": "Y", "matches": 2})
    assert kept == {"field_names": ["name", "birth date"], "matches": 2}


def test_key_material_in_any_text_is_replaced() -> None:
    assert text("see -----BEGIN PRIVATE KEY-----\nMIIE") == "[key material removed]"
    assert text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA") == "[key material removed]"


def test_a_table_of_binary_hashes_is_kept_but_deeper_nesting_is_not() -> None:
    kept = details(
        {
            "sha256": {"/opt/cms/bin/monitor": "ab" * 32},
            "deep": {"x": {"name": "Jane"}},
            "nested": {"name": "Jane", "port": 515},
        }
    )
    assert kept == {
        "sha256": {"/opt/cms/bin/monitor": "ab" * 32},
        "deep": "(1 entries)",
        "nested": {"port": 515},
    }
