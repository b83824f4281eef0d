"""Keys and signatures: every supported algorithm, key ids, and the keys we refuse."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from orchestrator.domain.trust.signatures import (
    GENERATE_CHOICES,
    generate_key,
    load_private_key,
    load_public_key,
)
from orchestrator.errors import TrustError

PEM, SPKI = serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo


@pytest.mark.parametrize("algorithm", sorted(GENERATE_CHOICES))
def test_every_supported_algorithm_signs_and_verifies(algorithm: str) -> None:
    key = generate_key(algorithm)
    public = load_public_key(key.public.pem)
    signature = key.sign(b"DSSEv1 message")
    assert public.verify(b"DSSEv1 message", signature)
    assert not public.verify(b"DSSEv1 messagE", signature)


@pytest.mark.parametrize("algorithm", sorted(GENERATE_CHOICES))
def test_private_key_file_round_trips(algorithm: str) -> None:
    key = generate_key(algorithm)
    assert load_private_key(key.private_pem()).keyid == key.keyid


def test_key_id_is_the_sha256_of_the_spki_der() -> None:
    key = generate_key("ecdsa-p256")
    der = serialization.load_pem_public_key(key.public.pem.encode()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert key.keyid == hashlib.sha256(der).hexdigest()


def test_rsa_2048_key_is_refused_as_too_weak() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = weak.public_key().public_bytes(PEM, SPKI)
    with pytest.raises(TrustError) as caught:
        load_public_key(pem)
    assert caught.value.reason == "key-too-weak"
    private = weak.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    with pytest.raises(TrustError) as caught:
        load_private_key(private)
    assert caught.value.reason == "key-too-weak"


def test_unsupported_curve_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256K1())
    pem = key.public_key().public_bytes(PEM, SPKI)
    with pytest.raises(TrustError) as caught:
        load_public_key(pem)
    assert caught.value.reason == "key-invalid"


def test_signature_from_another_key_does_not_verify() -> None:
    signer, other = generate_key("ed25519"), generate_key("ed25519")
    assert not other.public.verify(b"m", signer.sign(b"m"))


def test_garbage_is_not_a_public_key() -> None:
    with pytest.raises(TrustError) as caught:
        load_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    assert caught.value.reason == "key-invalid"
