"""Signed exports: a DSSE statement over the file's hash, campaign and chain head; tampering is caught."""

from __future__ import annotations

import json

from orchestrator.domain.trust.policy import TrustPolicy
from orchestrator.domain.trust.signatures import generate_key
from orchestrator.exports.signing import sign_export, verify_export

DATA = b"asset_tag,serial\r\nBME-1,S-1\r\n"
KEY = generate_key("ed25519")


def _sig(data: bytes = DATA) -> bytes:
    return sign_export(data, KEY, fmt="csv", campaign="c-1", chain_head="ab" * 32, name="r.csv")


def test_a_signed_export_verifies_with_its_public_key() -> None:
    result = verify_export(DATA, _sig(), keys=[KEY.public])
    assert result.valid and result.reason == "valid" and result.signers == (KEY.keyid,)
    assert result.statement is not None and result.statement["chain_head"] == "ab" * 32
    assert result.statement["campaign"] == "c-1" and result.statement["format"] == "csv"


def test_a_changed_export_is_detected() -> None:
    result = verify_export(DATA.replace(b"S-1", b"S-2"), _sig(), keys=[KEY.public])
    assert not result.valid and result.reason == "export-tampered"


def test_a_changed_statement_is_detected() -> None:
    envelope = json.loads(_sig())
    import base64

    stmt = json.loads(base64.b64decode(envelope["payload"]))
    stmt["chain_head"] = "cd" * 32
    envelope["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
    result = verify_export(DATA, json.dumps(envelope).encode(), keys=[KEY.public])
    assert not result.valid and result.reason == "signature-invalid"


def test_a_signature_by_another_key_does_not_count() -> None:
    result = verify_export(DATA, _sig(), keys=[generate_key("ed25519").public])
    assert not result.valid and result.reason == "unknown-key"


def test_a_policy_key_counts_and_a_revoked_one_does_not() -> None:
    policy = TrustPolicy().with_key(KEY.public, "hospital-biomed", "A. Rossi")
    assert verify_export(DATA, _sig(), policy=policy).valid
    revoked = policy.with_revocation(KEY.keyid, "laptop stolen")
    result = verify_export(DATA, _sig(), policy=revoked)
    assert not result.valid and result.reason == "key-revoked"


def test_garbage_is_a_malformed_signature_not_a_crash() -> None:
    for junk in (b"", b"{}", b"not json", json.dumps({"payloadType": "x"}).encode()):
        result = verify_export(DATA, junk, keys=[KEY.public])
        assert not result.valid and result.reason == "signature-malformed"
