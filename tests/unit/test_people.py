"""Who decides is a name: the flag, else $CMSPATCH_OPERATOR, else the login name marked as such, loudly."""

from __future__ import annotations

import getpass

import pytest

from orchestrator.cli.people import ENV, operator_name


def test_the_flag_names_the_operator(monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(ENV, "service account")
    assert operator_name("  A. Rossi  ") == "A. Rossi"
    assert capsys.readouterr().err == ""


def test_the_environment_names_it_when_no_flag_does(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "M. Bianchi (biomedical engineering)")
    assert operator_name(None) == "M. Bianchi (biomedical engineering)"


def test_the_login_name_is_never_taken_silently(monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(ENV, raising=False)
    recorded = operator_name("   ")
    assert recorded == f"{getpass.getuser()} (login name; no --operator given)"
    assert "--operator NAME" in capsys.readouterr().err
