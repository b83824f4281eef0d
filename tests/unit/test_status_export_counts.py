"""``cmspatch status`` and every export count the same journal the same way (domain.projection).

Status used to say "16 patched + 1 skipped" where the exports said 17 patched: a monitor skipped as
already patched, whose verdicts prove it fixed, is patched in both now. The campaign is real (engine,
journal file, verification) on scripted monitors; the documents are the CLI's own.
"""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.cli.main import main
from orchestrator.domain.trust.verified import VerifiedPackage
from tests.trust_helpers import FIXED_ELF, FIXED_VERSION
from tests.unit.engine_rules_rig import Rules, device, policy, signed_package


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> VerifiedPackage:
    return signed_package(tmp_path_factory.mktemp("package"))


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory, package: VerifiedPackage) -> Iterator[Path]:
    rules = Rules(tmp_path_factory.mktemp("campaign"), package, tuple(device(i) for i in range(1, 5)),
                  durable=True)
    rules.monitor(2).flash(FIXED_VERSION, FIXED_ELF, FIXED_ELF)  # already patched: skipped, proven fixed
    rules.monitor(3).install_exit = 5  # failed
    rules.monitor(4).patient = True  # deferred
    try:
        engine, _ = rules.run(policy(canary_must_pass=False))
        assert engine.status.devices["bed02"].state.value == "skipped"
        yield rules.journal_path
    finally:
        rules.close()


def _export(journal: Path, fmt: str, out: Path) -> str:
    assert main(["export", "--journal", str(journal), "--format", fmt, "--out", str(out)]) == 0
    return out.read_text()


def test_status_and_every_export_give_the_same_counts(journal: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--journal", str(journal), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    outcomes = {k: v for k, v in status["outcomes"].items() if v}
    assert outcomes == {"patched": 2, "failed": 1, "deferred": 1}
    assert status["counts"]["skipped"] == 1  # the state stays what the engine wrote

    doc = json.loads(_export(journal, "json", tmp_path / "e.json"))
    assert Counter(d["outcome"] for d in doc["devices"]) == outcomes
    assert {k: v for k, v in doc["summary"]["total"].items() if v} == outcomes

    rows = list(csv.DictReader(_export(journal, "csv", tmp_path / "e.csv").splitlines()))
    assert Counter(r["outcome"] for r in rows) == outcomes

    bom = json.loads(_export(journal, "cyclonedx", tmp_path / "e.cdx.json"))
    marks = [p["value"] for c in bom["components"] for p in c.get("properties", ())
             if p["name"] == "cmspatch:outcome"]
    assert Counter(marks) == outcomes

    csaf = json.loads(_export(journal, "csaf", tmp_path / "e.csaf.json"))
    summary = next(n["text"] for n in csaf["document"]["notes"] if n.get("title") == "Campaign outcome")
    assert dict((o, int(n)) for n, o in re.findall(r"(\d+) ([a-z-]+)", summary.split(":")[-1])) == outcomes

    html = _export(journal, "html", tmp_path / "e.html")
    for outcome, n in outcomes.items():
        assert re.search(rf"\b{n} [^,<]*{outcome}", html, re.IGNORECASE), (outcome, n)


def test_status_names_the_outcomes_beside_the_states(journal: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--journal", str(journal)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("finished, not all patched (1 deferred, 1 failed)")
    assert lines[1] == "outcomes (as the exports count them): 2 patched, 1 deferred, 1 failed"
