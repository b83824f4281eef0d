"""Keys and signatures: every supported algorithm, key ids, and the keys we refuse."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from orchestrator.domain.trust.signatures import (
    GENERATE_CHOICES,
    Algorithm,
    KeyLocked,
    ecdsa_digest,
    ecdsa_raw_to_der,
    generate_key,
    is_encrypted_pem,
    load_private_key,
    load_public_key,
    public_key_from_raw,
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


@pytest.mark.parametrize("algorithm", sorted(GENERATE_CHOICES))
def test_encrypted_key_file_round_trips_only_with_its_passphrase(algorithm: str) -> None:
    key = generate_key(algorithm)
    pem = key.private_pem(b"s3cret passphrase", log2_n=12)  # cheap for the test; files get 2^17
    assert is_encrypted_pem(pem) and b"s3cret" not in pem
    loaded = load_private_key(pem, passphrase=b"s3cret passphrase")
    assert loaded.keyid == key.keyid and loaded.custody() == {"kind": "file", "encrypted": True}
    with pytest.raises(KeyLocked) as wrong:
        load_private_key(pem, passphrase=b"s3cret passphrasE")
    assert wrong.value.reason == "wrong-passphrase"
    with pytest.raises(KeyLocked) as none:
        load_private_key(pem)
    assert none.value.reason == "passphrase-needed"


def test_a_tokens_raw_ecdsa_signature_verifies_once_converted_to_der() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = load_private_key(private.private_bytes(PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    r, s = decode_dss_signature(private.sign(b"m", ec.ECDSA(hashes.SHA256())))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")  # what CKM_ECDSA returns
    assert not key.public.verify(b"m", raw)
    assert key.public.verify(b"m", ecdsa_raw_to_der(raw))
    assert ecdsa_digest(Algorithm.ECDSA_P256, b"m") == hashlib.sha256(b"m").digest()


def test_a_tokens_raw_public_key_has_the_same_key_id_as_its_pem() -> None:
    key = generate_key("ed25519")
    raw = serialization.load_pem_public_key(key.public.pem.encode()).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert public_key_from_raw(Algorithm.ED25519, raw, source="token").keyid == key.keyid


def test_key_files_are_encrypted_with_scrypt_at_the_full_cost_by_default() -> None:
    pem = generate_key("ed25519").private_pem(b"pass")
    der = base64.b64decode(b"".join(pem.splitlines()[1:-1]))
    scrypt_oid, n_2_17 = bytes.fromhex("06092b06010401da47040b"), bytes.fromhex("0203020000")
    assert scrypt_oid in der and n_2_17 in der  # not PBKDF2 with 2048 iterations
    assert load_private_key(pem, passphrase=b"pass").custody()["encrypted"]
