"""Anti-rollback state (pure part): per-model release counters."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from orchestrator.domain.trust.manifest import Artifact, Manifest
from orchestrator.domain.trust.rollback import RollbackState, parse_state, render_state
from orchestrator.errors import TrustError

M = Manifest(package="p", artifacts=(Artifact("p", 1, "c" * 64),), models=("CMS8000", "MN-120"),
             from_versions=("*",), target_version="2", release=5, cves=(),
             expires=datetime(2027, 1, 1, tzinfo=UTC))
STATE = RollbackState().record(M, "c" * 64, "2026-11-24T00:00:00Z")


def test_lower_release_is_a_rollback() -> None:
    found = STATE.check(replace(M, release=4), "d" * 64)
    assert found is not None and found[0] == "rollback"


def test_same_release_with_other_content_is_refused() -> None:
    found = STATE.check(M, "d" * 64)
    assert found is not None and found[0] == "release-reused"


def test_same_release_same_content_and_higher_release_pass() -> None:
    assert STATE.check(M, "c" * 64) is None
    assert STATE.check(replace(M, release=6), "d" * 64) is None


def test_other_models_have_their_own_counter() -> None:
    assert STATE.check(replace(M, models=("CMS6000",), release=1), "e" * 64) is None


def test_state_round_trips() -> None:
    assert parse_state(render_state(STATE)) == STATE


@pytest.mark.parametrize("data", [b"", b"[]", b'{"version": 1}',
                                  b'{"version": 1, "models": {"X": {"release": "1"}}}'])
def test_corrupt_state_is_refused_not_reset(data: bytes) -> None:
    with pytest.raises(TrustError) as caught:
        parse_state(data)
    assert caught.value.reason == "state-invalid"
