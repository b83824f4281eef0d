"""``cmspatch export`` end to end: a real SQLite journal, the real command in a subprocess, real keys."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.cli.main import main
from orchestrator.domain.events import Event
from orchestrator.domain.trust.policy import TrustPolicy, render_policy
from orchestrator.domain.trust.signatures import generate_key
from orchestrator.exports.cyclonedx import validate_cyclonedx
from orchestrator.exports.schemas import csaf_validator
from tests.unit.test_export_journal import CAMPAIGN, SECRETS, build_campaign


def cmspatch(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real command in its own process: what an operator or a CI job runs."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )


def inproc(capsys: pytest.CaptureFixture[str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    """The same entry point in-process, for the error paths where a new interpreter adds nothing."""
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return subprocess.CompletedProcess(list(args), code, out.out, out.err)


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("journal") / "cmspatch-journal.db"
    with SqliteJournal(path) as j:
        for r in build_campaign(other_campaign_after=True):
            j.append(Event(campaign=r.campaign, kind=r.kind, data=r.data, device=r.device, at=r.at))
    return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keys")
    key = generate_key("ed25519")
    (d / "signer.pem").write_bytes(key.private_pem())
    (d / "signer.pub").write_text(key.public.pem)
    (d / "policy.yml").write_text(render_policy(TrustPolicy().with_key(key.public, "hospital-security")))
    (d / "other.pub").write_text(generate_key("ed25519").public.pem)
    return {p.stem if p.suffix != ".pub" else p.stem + "_pub": p for p in d.iterdir()}


def test_every_format_is_written_from_a_real_journal(journal: Path, tmp_path: Path) -> None:
    outputs = {}
    for fmt in ("csv", "json", "html", "csaf", "cyclonedx"):
        out = tmp_path / f"report.{fmt}"
        result = cmspatch(
            "export",
            "--format",
            fmt,
            "--out",
            out,
            "--journal",
            journal,
            "--campaign",
            CAMPAIGN,
            "--publisher",
            "Ospedale Nord",
            "--json",
        )
        assert result.returncode == 0, result.stderr
        summary = json.loads(result.stdout)
        assert summary["campaign"] == CAMPAIGN and summary["monitors"] == 6
        outputs[fmt] = out.read_text(encoding="utf-8")
        assert not [s for s in SECRETS if s in outputs[fmt]], fmt
    head = SqliteJournal(journal, create=False).head()
    assert all(head in text for text in outputs.values())
    assert len(list(csv.DictReader(io.StringIO(outputs["csv"])))) == 6
    assert not list(csaf_validator().iter_errors(json.loads(outputs["csaf"])))
    assert validate_cyclonedx(outputs["cyclonedx"]) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"report.{f}" for f in outputs
    )  # no temp left


def test_the_newest_campaign_is_exported_by_default(
    journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the journal's newest record belongs to a survey with no campaign-created: the newest *created* wins
    result = inproc(capsys, "export", "--format", "json", "--out", tmp_path / "r.json", "--journal", journal)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "r.json").read_text())["campaign"]["id"] == CAMPAIGN


def test_the_column_map_shapes_the_csv(
    journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = tmp_path / "cmms.yml"
    mapping.write_text('delimiter: ";"\ncolumns:\n  asset_tag: "Asset No."\n  outcome: Result\n')
    out = tmp_path / "cmms.csv"
    result = inproc(
        capsys, "export", "--format", "csv", "--out", out, "--journal", journal, "--columns", mapping
    )
    assert result.returncode == 0, result.stderr
    assert out.read_text().splitlines()[0] == "Asset No.;Result"


def test_a_bad_column_map_is_a_usage_error_with_its_line_and_writes_nothing(
    journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mapping = tmp_path / "cmms.yml"
    mapping.write_text("columns:\n  asset_tag: A\n  colour: B\n")
    out = tmp_path / "cmms.csv"
    result = inproc(
        capsys, "export", "--format", "csv", "--out", out, "--journal", journal, "--columns", mapping
    )
    assert result.returncode == 2
    assert "cmms.yml:3" in result.stderr and "[columns-invalid]" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_a_signed_export_verifies_and_a_tampered_one_exits_3(
    journal: Path, keys: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.csv"
    result = cmspatch(
        "export", "--format", "csv", "--out", out, "--journal", journal, "--sign", keys["signer"]
    )
    assert result.returncode == 0, result.stderr
    sig = Path(f"{out}.sig")
    assert json.loads(sig.read_text())["payloadType"] == "application/vnd.cmspatch.export-statement+json"
    ok = cmspatch("export", "verify", out, "--sig", sig, "--key", keys["signer_pub"])
    assert ok.returncode == 0 and "valid" in ok.stdout, ok.stderr
    assert inproc(capsys, "export", "verify", out, "--policy", keys["policy"]).returncode == 0  # FILE.sig
    other = inproc(capsys, "export", "verify", out, "--sig", sig, "--key", keys["other_pub"], "--json")
    assert other.returncode == 3 and json.loads(other.stdout)["reason"] == "unknown-key"
    out.write_text(out.read_text().replace("fixed", "fixed ", 1))
    bad = cmspatch("export", "verify", out, "--sig", sig, "--policy", keys["policy"])
    assert bad.returncode == 3 and "[export-tampered]" in bad.stderr


def test_verify_needs_a_key_or_a_policy(
    journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r.csv").write_text("x")
    result = inproc(capsys, "export", "verify", tmp_path / "r.csv", "--sig", tmp_path / "r.csv.sig")
    assert result.returncode == 2 and "--policy" in result.stderr


def test_an_export_from_a_broken_chain_exits_7_and_leaves_the_old_file(
    journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "tampered.db"
    copy.write_bytes(journal.read_bytes())
    with sqlite3.connect(copy) as db:
        db.execute("UPDATE events SET data = replace(data, 'failed', 'patched') WHERE kind = 'state-changed'")
    out = tmp_path / "r.json"
    out.write_text("previous report")
    result = inproc(capsys, "export", "--format", "json", "--out", out, "--journal", copy)
    assert result.returncode == 7 and "[chain-broken]" in result.stderr
    assert out.read_text() == "previous report"


def test_export_without_format_or_out_is_a_usage_error(
    journal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = inproc(capsys, "export", "--journal", journal)
    assert result.returncode == 2 and "--format" in result.stderr and "Traceback" not in result.stderr


def test_an_unknown_campaign_is_a_usage_error(
    journal: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = inproc(
        capsys,
        "export",
        "--format",
        "csv",
        "--out",
        tmp_path / "r.csv",
        "--journal",
        journal,
        "--campaign",
        "nope",
    )
    assert result.returncode == 2 and "[unknown-campaign]" in result.stderr


def test_a_missing_journal_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = inproc(
        capsys, "export", "--format", "csv", "--out", tmp_path / "r.csv", "--journal", tmp_path / "no.db"
    )
    assert result.returncode == 2 and not (tmp_path / "no.db").exists()


def test_an_export_signature_names_who_signed_it_and_when_and_verify_shows_the_role(
    journal: Path, keys: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    made = inproc(capsys, "export", "--format", "json", "--out", out, "--journal", journal,
                  "--sign", keys["signer"], "--by", "L. Verdi (security officer)")
    assert made.returncode == 0, made.stderr
    checked = inproc(capsys, "export", "verify", out, "--policy", keys["policy"], "--json")
    result = json.loads(checked.stdout)
    assert checked.returncode == 0 and result["statement"]["signed_by"] == "L. Verdi (security officer)"
    assert result["statement"]["signed_at"].endswith("Z") and result["signer_roles"] == ["hospital-security"]
    shown = inproc(capsys, "export", "verify", out, "--policy", keys["policy"])
    assert "[hospital-security], signed by L. Verdi (security officer) at " in shown.stdout
