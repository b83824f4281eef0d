"""DSSE envelope and manifest payload: exact bytes, strict parsing, typed errors only."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.domain.trust.envelope import PAYLOAD_TYPE, Envelope, pae, parse_envelope
from orchestrator.domain.trust.manifest import Artifact, Manifest, parse_manifest, render_manifest
from orchestrator.errors import TrustError

MANIFEST = Manifest(
    package="cms8000-fix.tar.gz", artifacts=(Artifact("cms8000-fix.tar.gz", 10, "a" * 64),),
    models=("CMS8000",), from_versions=("CMS7.820.*",), target_version="2.0", release=3,
    cves=("CVE-2025-0626",), expires=datetime(2027, 1, 1, tzinfo=UTC),
)

scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=8,
)
manifest_like = st.fixed_dictionaries(
    {},
    optional={
        "_type": st.sampled_from(["cmspatch-manifest", "x"]) | scalars,
        "version": st.sampled_from([1, 2]) | scalars,
        "package": st.text(max_size=30) | scalars,
        "artifacts": st.lists(st.fixed_dictionaries({}, optional={
            "name": st.text(max_size=20), "size": st.integers(), "sha256": st.text(max_size=64)}), max_size=3)
        | scalars,
        "models": st.lists(st.sampled_from(["CMS8000", "MN-120", "XYZ"]), max_size=3) | scalars,
        "from_versions": st.lists(st.text(max_size=10), max_size=3) | scalars,
        "target_version": st.text(max_size=10) | scalars,
        "release": st.integers() | scalars,
        "cves": st.lists(st.sampled_from(["CVE-2025-0626", "CVE-1"]), max_size=3) | scalars,
        "expires": st.sampled_from(["2027-01-01T00:00:00Z", "2027-01-01", "soon"]) | scalars,
        "created": scalars,
        "note": json_values,
    },
)


def test_pae_matches_the_dsse_specification_vector() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_envelope_round_trips_the_payload_bytes_exactly() -> None:
    payload = b'{ "odd":   "spacing" }\n'  # never re-serialised: whitespace survives
    envelope = Envelope(PAYLOAD_TYPE, payload)
    assert parse_envelope(envelope.to_json_bytes()).payload == payload


def test_manifest_render_and_parse_round_trip() -> None:
    assert parse_manifest(render_manifest(MANIFEST)) == MANIFEST


def test_manifest_with_unknown_field_is_refused() -> None:
    doc = json.loads(render_manifest(MANIFEST))
    doc["install_anyway"] = True
    with pytest.raises(TrustError) as caught:
        parse_manifest(json.dumps(doc).encode())
    assert caught.value.reason == "manifest-invalid"


def test_manifest_with_duplicate_json_key_is_refused() -> None:
    text = render_manifest(MANIFEST).decode().replace('"release": 3', '"release": 3, "release": 9')
    with pytest.raises(TrustError, match="duplicate"):
        parse_manifest(text.encode())


def test_envelope_of_another_payload_type_is_refused() -> None:
    raw = json.dumps({"payloadType": "text/plain", "payload": base64.b64encode(b"x").decode(),
                      "signatures": []})
    with pytest.raises(TrustError) as caught:
        parse_envelope(raw.encode())
    assert caught.value.reason == "manifest-invalid"


@settings(max_examples=120, deadline=None)
@given(st.binary(max_size=300))
def test_envelope_parser_raises_only_trust_errors_on_arbitrary_bytes(data: bytes) -> None:
    try:
        parse_envelope(data)
    except TrustError:
        pass


@settings(max_examples=120, deadline=None)
@given(st.fixed_dictionaries({}, optional={
    "payloadType": st.just(PAYLOAD_TYPE) | scalars,
    "payload": st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()) | scalars,
    "signatures": st.lists(st.fixed_dictionaries({}, optional={"keyid": scalars, "sig": scalars}),
                           max_size=3) | json_values,
}))
def test_envelope_parser_raises_only_trust_errors_on_json_like_input(doc: dict[str, object]) -> None:
    try:
        parse_envelope(json.dumps(doc).encode())
    except TrustError:
        pass


@settings(max_examples=120, deadline=None)
@given(manifest_like)
def test_manifest_parser_raises_only_trust_errors_on_json_like_input(doc: dict[str, object]) -> None:
    try:
        parse_manifest(json.dumps(doc).encode())
    except TrustError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_manifest_parser_raises_only_trust_errors_on_arbitrary_bytes(data: bytes) -> None:
    try:
        parse_manifest(data)
    except TrustError:
        pass


def test_deeply_nested_json_is_a_typed_error_not_a_crash() -> None:
    with pytest.raises(TrustError):
        parse_envelope(b"[" * 100_000 + b"]" * 100_000)
