"""Keys and signatures: Ed25519, ECDSA P-256/P-384 and RSA-PSS (>= 3072 bits), via ``cryptography``.

A key id is the SHA-256 (hex) of the public key's SubjectPublicKeyInfo DER, so anyone can recompute it
from the PEM and no registry of names is needed. The algorithm is a property of the *key* held in the
trust policy, never of the signature: an envelope cannot talk a verifier into another algorithm.

Parameters are fixed per key type: Ed25519 (pure), ECDSA P-256 with SHA-256, ECDSA P-384 with SHA-384
(DER signatures), RSA-PSS with SHA-256, MGF1-SHA-256 and a salt as long as the digest (any salt length
is accepted on verify, as RFC 8017 allows). Refused: RSA under 3072 bits, other curves, DSA, Ed448.
Private key files are PKCS#8 PEM, mode 0600, encrypted with a passphrase by default: PBES2 with scrypt
(RFC 7914 section 7; N = 2^17, r = 8, p = 1, about 128 MiB and 0.4 s per try) and AES-256-CBC, which
cryptography and OpenSSL read. Not ``BestAvailableEncryption``: for PKCS#8 it uses PBKDF2 with 2048
iterations, about a millisecond per guess on one core. (OpenSSL's command line refuses scrypt above
32 MiB unless given a larger maxmem; cmspatch reads the file itself.) An unencrypted file is an
explicit choice. A key may also live on a token (``adapters/pkcs11_keys.py``): anything with a
``public`` key, a ``sign`` method and a ``custody`` record is a ``Signer``, and its signatures are
checked here exactly like a file key's.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives import padding as block_padding
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from orchestrator.domain.trust.reasons import Reason
from orchestrator.errors import TrustError

MIN_RSA_BITS = 3072
MAX_PEM_BYTES = 64 * 1024
SCRYPT_LOG2_N = 17  # key files: 2^17 x r=8 x 128 bytes = 128 MiB per guess
SCRYPT_R = 8


class Algorithm(StrEnum):
    ED25519 = "ed25519"
    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    RSA_PSS = "rsa-pss"


# Choices offered by `cmspatch keys new --algorithm`.
GENERATE_CHOICES: dict[str, Algorithm] = {
    "ed25519": Algorithm.ED25519,
    "ecdsa-p256": Algorithm.ECDSA_P256,
    "ecdsa-p384": Algorithm.ECDSA_P384,
    "rsa-3072": Algorithm.RSA_PSS,
}

_PublicKeyTypes = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
_PrivateKeyTypes = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_PSS_SIGN = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
_PSS_VERIFY = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)


def _algorithm_of(key: object, *, source: str) -> Algorithm:
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return Algorithm.ED25519
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        if isinstance(key.curve, ec.SECP256R1):
            return Algorithm.ECDSA_P256
        if isinstance(key.curve, ec.SECP384R1):
            return Algorithm.ECDSA_P384
        raise TrustError(f"{source}: curve {key.curve.name} is not supported (use P-256 or P-384)",
                         reason=Reason.KEY_INVALID)
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise TrustError(f"{source}: RSA key of {key.key_size} bits refused; "
                             f"at least {MIN_RSA_BITS} needed", reason=Reason.KEY_TOO_WEAK)
        return Algorithm.RSA_PSS
    raise TrustError(f"{source}: key type {type(key).__name__} is not supported "
                     "(Ed25519, ECDSA P-256/P-384, RSA >= 3072)", reason=Reason.KEY_INVALID)


def _spki_der(key: _PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True)
class PublicKey:
    keyid: str
    algorithm: Algorithm
    pem: str
    _key: _PublicKeyTypes = field(repr=False, compare=False)

    def verify(self, message: bytes, signature: bytes) -> bool:
        try:
            if isinstance(self._key, ed25519.Ed25519PublicKey):
                self._key.verify(signature, message)
            elif isinstance(self._key, ec.EllipticCurvePublicKey):
                digest = hashes.SHA384() if self.algorithm is Algorithm.ECDSA_P384 else hashes.SHA256()
                self._key.verify(signature, message, ec.ECDSA(digest))
            else:
                self._key.verify(signature, message, _PSS_VERIFY, hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return True


class Signer(Protocol):
    """What signs a manifest: a key file in memory or a key that never leaves a token."""

    @property
    def public(self) -> PublicKey: ...

    @property
    def keyid(self) -> str: ...

    def sign(self, message: bytes) -> bytes: ...

    def custody(self) -> dict[str, Any]: ...


class KeyLocked(TrustError):
    """An encrypted key file was read without (the right) passphrase."""


@dataclass(frozen=True)
class SigningKey:
    public: PublicKey
    _key: _PrivateKeyTypes = field(repr=False, compare=False)
    encrypted: bool = False  # the file it came from was passphrase-protected

    @property
    def keyid(self) -> str:
        return self.public.keyid

    def sign(self, message: bytes) -> bytes:
        if isinstance(self._key, ed25519.Ed25519PrivateKey):
            return self._key.sign(message)
        if isinstance(self._key, ec.EllipticCurvePrivateKey):
            digest = hashes.SHA384() if self.public.algorithm is Algorithm.ECDSA_P384 else hashes.SHA256()
            return self._key.sign(message, ec.ECDSA(digest))
        return self._key.sign(message, _PSS_SIGN, hashes.SHA256())

    def custody(self) -> dict[str, Any]:
        return {"kind": "file", "encrypted": self.encrypted}

    def private_pem(self, passphrase: bytes | None = None, *, log2_n: int = SCRYPT_LOG2_N) -> bytes:
        """PKCS#8 PEM, encrypted with ``passphrase`` (scrypt, cost 2^``log2_n``) when one is given."""
        if not passphrase:
            return self._key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption())
        der = self._key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption())
        return _scrypt_pkcs8(der, passphrase, log2_n)


def _der(tag: int, body: bytes) -> bytes:
    size = len(body)
    length = bytes([size]) if size < 0x80 else (
        bytes([0x80 | ((size.bit_length() + 7) // 8)]) + size.to_bytes((size.bit_length() + 7) // 8, "big"))
    return bytes([tag]) + length + body


def _seq(*parts: bytes) -> bytes:
    return _der(0x30, b"".join(parts))


def _int(value: int) -> bytes:
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


_PBES2 = _der(0x06, bytes.fromhex("2a864886f70d01050d"))  # 1.2.840.113549.1.5.13
_SCRYPT = _der(0x06, bytes.fromhex("2b06010401da47040b"))  # 1.3.6.1.4.1.11591.4.11 (RFC 7914)
_AES256_CBC = _der(0x06, bytes.fromhex("60864801650304012a"))  # 2.16.840.1.101.3.4.1.42


def _scrypt_pkcs8(der: bytes, passphrase: bytes, log2_n: int) -> bytes:
    """EncryptedPrivateKeyInfo, PBES2 with scrypt and AES-256-CBC (RFC 8018 appendix A.4, RFC 7914 s. 7)."""
    salt, iv = secrets.token_bytes(16), secrets.token_bytes(16)
    key = Scrypt(salt=salt, length=32, n=1 << log2_n, r=SCRYPT_R, p=1).derive(passphrase)
    padder = block_padding.PKCS7(128).padder()
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padder.update(der) + padder.finalize()) + encryptor.finalize()
    kdf = _seq(_SCRYPT, _seq(_der(0x04, salt), _int(1 << log2_n), _int(SCRYPT_R), _int(1), _int(32)))
    body = _seq(_seq(_PBES2, _seq(kdf, _seq(_AES256_CBC, _der(0x04, iv)))), _der(0x04, ciphertext))
    text = base64.b64encode(body).decode("ascii")
    lines = "\n".join(text[i:i + 64] for i in range(0, len(text), 64))
    return f"-----BEGIN ENCRYPTED PRIVATE KEY-----\n{lines}\n-----END ENCRYPTED PRIVATE KEY-----\n".encode()


def key_id(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def _public(key: _PublicKeyTypes, *, source: str) -> PublicKey:
    algorithm = _algorithm_of(key, source=source)
    der = _spki_der(key)
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return PublicKey(keyid=key_id(der), algorithm=algorithm, pem=pem.decode("ascii"), _key=key)


def load_public_key(pem: bytes | str, *, source: str = "public key") -> PublicKey:
    data = pem.encode("utf-8", "replace") if isinstance(pem, str) else pem
    if len(data) > MAX_PEM_BYTES:
        raise TrustError(f"{source}: too large to be a public key", reason=Reason.KEY_INVALID)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise TrustError(f"{source}: not a PEM public key", reason=Reason.KEY_INVALID) from exc
    if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        _algorithm_of(key, source=source)  # raises with the precise complaint
        raise TrustError(f"{source}: unsupported key", reason=Reason.KEY_INVALID)
    return _public(key, source=source)


def is_encrypted_pem(pem: bytes) -> bool:
    """Whether a private key file needs a passphrase (PKCS#8 ENCRYPTED, or a legacy Proc-Type header)."""
    return b"-----BEGIN ENCRYPTED PRIVATE KEY-----" in pem or b"Proc-Type: 4,ENCRYPTED" in pem


def load_private_key(pem: bytes, *, source: str = "private key",
                     passphrase: bytes | None = None) -> SigningKey:
    """Read a PEM private key; an encrypted one needs ``passphrase`` (``KeyLocked`` when absent or wrong)."""
    if len(pem) > MAX_PEM_BYTES:
        raise TrustError(f"{source}: too large to be a private key", reason=Reason.KEY_INVALID)
    encrypted = is_encrypted_pem(pem)
    if encrypted and not passphrase:
        raise KeyLocked(f"{source}: the key is encrypted and no passphrase was given",
                        reason="passphrase-needed")
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase if encrypted else None)
    except ValueError as exc:
        if encrypted:  # cryptography says "Bad decrypt. Incorrect password?"
            raise KeyLocked(f"{source}: wrong passphrase (the key could not be decrypted)",
                            reason="wrong-passphrase") from exc
        raise TrustError(f"{source}: not a PEM private key", reason=Reason.KEY_INVALID) from exc
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise TrustError(f"{source}: not a PEM private key", reason=Reason.KEY_INVALID) from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        _algorithm_of(key, source=source)
        raise TrustError(f"{source}: unsupported key", reason=Reason.KEY_INVALID)
    _algorithm_of(key, source=source)
    return SigningKey(public=_public(key.public_key(), source=source), _key=key, encrypted=encrypted)


def public_key_from_raw(algorithm: Algorithm, point: bytes, *, source: str) -> PublicKey:
    """A token's public key from its raw point: 32 bytes for Ed25519, an uncompressed SEC1 point for ECDSA."""
    try:
        if algorithm is Algorithm.ED25519:
            return _public(ed25519.Ed25519PublicKey.from_public_bytes(point), source=source)
        curve: ec.EllipticCurve = ec.SECP384R1() if algorithm is Algorithm.ECDSA_P384 else ec.SECP256R1()
        return _public(ec.EllipticCurvePublicKey.from_encoded_point(curve, point), source=source)
    except ValueError as exc:
        raise TrustError(f"{source}: the token's public key cannot be read as {algorithm.value}",
                         reason=Reason.KEY_INVALID) from exc


def ecdsa_digest(algorithm: Algorithm, message: bytes) -> bytes:
    """What a token's raw CKM_ECDSA signs: the message digest the verifier will recompute."""
    digest = hashlib.sha384 if algorithm is Algorithm.ECDSA_P384 else hashlib.sha256
    return digest(message).digest()


def ecdsa_raw_to_der(raw: bytes) -> bytes:
    """PKCS#11 returns ECDSA signatures as r||s; ``PublicKey.verify`` (like X.509) expects DER."""
    if not raw or len(raw) % 2:
        raise TrustError("the token returned an ECDSA signature of odd length",
                         reason=Reason.SIGNATURE_INVALID)
    half = len(raw) // 2
    return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


def generate_key(algorithm: str) -> SigningKey:
    """A fresh signing key; ``algorithm`` is one of ``GENERATE_CHOICES``."""
    if algorithm not in GENERATE_CHOICES:
        raise TrustError(f"unknown algorithm {algorithm!r}; choose from {', '.join(GENERATE_CHOICES)}",
                         reason=Reason.KEY_INVALID)
    kind = GENERATE_CHOICES[algorithm]
    key: _PrivateKeyTypes
    if kind is Algorithm.ED25519:
        key = ed25519.Ed25519PrivateKey.generate()
    elif kind is Algorithm.ECDSA_P256:
        key = ec.generate_private_key(ec.SECP256R1())
    elif kind is Algorithm.ECDSA_P384:
        key = ec.generate_private_key(ec.SECP384R1())
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=MIN_RSA_BITS)
    return SigningKey(public=_public(key.public_key(), source=algorithm), _key=key)
