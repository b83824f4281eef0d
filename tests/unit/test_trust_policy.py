"""Trust policy parsing and the threshold rules: roles, distinct keys, rotation, revocation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.adapters.package_attest import new_envelope, sign_envelope
from orchestrator.domain.trust.envelope import Envelope
from orchestrator.domain.trust.manifest import Artifact, Manifest
from orchestrator.domain.trust.policy import TrustPolicy, parse_policy, render_policy
from orchestrator.domain.trust.signatures import SigningKey, generate_key
from orchestrator.domain.trust.threshold import SignatureStatus, check_threshold
from orchestrator.errors import TrustError

MANIFEST = Manifest(
    package="p.tar.gz", artifacts=(Artifact("p.tar.gz", 1, "b" * 64),), models=("CMS8000",),
    from_versions=("*",), target_version="2.0", release=1, cves=(), expires=datetime(2027, 1, 1, tzinfo=UTC),
)
VENDOR, BIOMED, SECURITY = generate_key("ed25519"), generate_key("ecdsa-p256"), generate_key("ed25519")


def policy_with(*pairs: tuple[SigningKey, str]) -> TrustPolicy:
    policy = TrustPolicy()
    for key, role in pairs:
        policy = policy.with_key(key.public, role)
    return parse_policy(render_policy(policy))  # always through the file format


HOSPITAL = policy_with((VENDOR, "vendor"), (BIOMED, "hospital-biomed"), (SECURITY, "hospital-security"))


def signed(*keys: SigningKey) -> Envelope:
    return new_envelope(MANIFEST, list(keys))


def test_policy_render_and_parse_round_trip() -> None:
    assert parse_policy(render_policy(HOSPITAL)) == HOSPITAL


def test_biomed_plus_security_meets_the_two_person_rule() -> None:
    result = check_threshold(signed(BIOMED, SECURITY), HOSPITAL)
    assert result.satisfied_by == "hospital-two-person"


def test_vendor_key_alone_meets_the_vendor_rule() -> None:
    assert check_threshold(signed(VENDOR), HOSPITAL).satisfied_by == "vendor"


def test_one_hospital_signature_is_below_threshold() -> None:
    result = check_threshold(signed(BIOMED), HOSPITAL)
    assert not result.satisfied and result.reason() == "below-threshold"
    assert any("1 more hospital-security" in m for m in result.missing)


def test_a_key_counts_once_however_many_times_it_signs() -> None:
    result = check_threshold(signed(BIOMED, BIOMED, BIOMED), HOSPITAL)
    assert not result.satisfied
    assert [c.status for c in result.checks] == [SignatureStatus.COUNTED, SignatureStatus.DUPLICATE,
                                                 SignatureStatus.DUPLICATE]


def test_two_keys_of_the_same_role_do_not_replace_the_other_role() -> None:
    second_biomed = generate_key("ed25519")
    policy = HOSPITAL.with_key(second_biomed.public, "hospital-biomed")
    assert not check_threshold(signed(BIOMED, second_biomed), policy).satisfied


def test_unknown_key_does_not_count() -> None:
    stranger = generate_key("ed25519")
    result = check_threshold(signed(BIOMED, stranger), HOSPITAL)
    assert result.reason() == "unknown-key"
    assert result.checks[1].status is SignatureStatus.UNKNOWN_KEY


def test_signature_over_edited_payload_is_invalid() -> None:
    envelope = signed(BIOMED, SECURITY)
    edited = Envelope(envelope.payload_type, envelope.payload.replace(b'"release": 1', b'"release": 9'),
                      envelope.signatures)
    result = check_threshold(edited, HOSPITAL)
    assert result.reason() == "signature-invalid"


def test_revoked_key_no_longer_counts() -> None:
    policy = HOSPITAL.with_revocation(SECURITY.keyid, "token lost", "2026-11-01")
    result = check_threshold(signed(BIOMED, SECURITY), policy)
    assert result.reason() == "key-revoked"
    assert "token lost" in result.checks[1].detail


def test_rotation_keeps_old_manifests_valid_and_accepts_the_new_key() -> None:
    new_security = generate_key("ecdsa-p384")
    rotated = HOSPITAL.with_key(new_security.public, "hospital-security")
    old = signed(BIOMED, SECURITY)
    assert check_threshold(old, rotated).satisfied  # no re-signing of old manifests
    assert check_threshold(signed(BIOMED, new_security), rotated).satisfied


def test_revocation_is_cured_by_adding_one_signature_without_re_attesting() -> None:
    new_security = generate_key("ed25519")
    policy = HOSPITAL.with_key(new_security.public, "hospital-security")
    policy = policy.with_revocation(SECURITY.keyid, "left")
    old = signed(BIOMED, SECURITY)
    assert not check_threshold(old, policy).satisfied
    resigned = sign_envelope(old, new_security)
    assert resigned.payload == old.payload
    assert check_threshold(resigned, policy).satisfied


def test_policy_with_unknown_role_is_refused() -> None:
    doc = yaml.safe_load(render_policy(HOSPITAL))
    doc["keys"][0]["role"] = "hospital-secruity"
    with pytest.raises(TrustError) as caught:
        parse_policy(yaml.safe_dump(doc))
    assert caught.value.reason == "policy-invalid"


def test_policy_listing_one_key_under_two_roles_is_refused() -> None:
    doc = yaml.safe_load(render_policy(HOSPITAL))
    doc["keys"].append(dict(doc["keys"][1], role="hospital-security"))
    with pytest.raises(TrustError, match="listed twice"):
        parse_policy(yaml.safe_dump(doc))


def test_policy_key_id_that_does_not_match_its_key_is_refused() -> None:
    doc = yaml.safe_load(render_policy(HOSPITAL))
    doc["keys"][0]["id"] = "0" * 64
    with pytest.raises(TrustError, match="not the id"):
        parse_policy(yaml.safe_dump(doc))


def test_policy_with_rsa_2048_key_is_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    doc = {"keys": [{"role": "vendor", "public_key": pem}]}
    with pytest.raises(TrustError) as caught:
        parse_policy(yaml.safe_dump(doc))
    assert caught.value.reason == "key-too-weak"


def test_policy_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(TrustError, match="policy:3:"):
        parse_policy("version: 1\nkeys:\n\t- role: vendor\n")


scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=10)
yamlish = st.recursive(
    scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=8)


@settings(max_examples=120, deadline=None)
@given(st.binary(max_size=200))
def test_policy_parser_raises_only_trust_errors_on_arbitrary_bytes(data: bytes) -> None:
    try:
        parse_policy(data)
    except TrustError:
        pass


@settings(max_examples=120, deadline=None)
@given(st.fixed_dictionaries({}, optional={
    "version": st.just(1) | scalars,
    "keys": st.lists(st.fixed_dictionaries({}, optional={
        "role": st.sampled_from(["vendor", "hospital-biomed", "x"]) | scalars,
        "public_key": st.just(VENDOR.public.pem) | scalars, "id": scalars, "owner": scalars}), max_size=2)
    | yamlish,
    "revoked": st.lists(st.just(VENDOR.keyid)
                        | st.dictionaries(st.sampled_from(["id", "reason", "date"]), scalars), max_size=2)
    | yamlish,
    "thresholds": st.lists(st.fixed_dictionaries({}, optional={
        "name": scalars, "require": st.dictionaries(st.sampled_from(["vendor", "hospital-biomed", "q"]),
                                                    st.integers(-2, 200) | scalars)}), max_size=2) | yamlish,
}))
def test_policy_parser_raises_only_trust_errors_on_yaml_like_input(doc: dict[str, object]) -> None:
    try:
        parse_policy(yaml.safe_dump(doc))
    except TrustError:
        pass


def test_a_bad_policy_entry_is_refused_with_its_line() -> None:
    text = ("version: 1\nthresholds:\n  - name: vendor\n    require: {vendor: 1}\n"
            "  - name: typo\n    require: {hospital-biomde: 1}\n")
    with pytest.raises(TrustError) as caught:
        parse_policy(text, "policy.yaml")
    assert caught.value.message.startswith("policy.yaml:6: thresholds[1].require")
