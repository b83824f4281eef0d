"""Signing keys that never leave a token: PKCS#11 through ``python-pkcs11`` (tested against SoftHSM2).

    with open_token_key(uri, module=None, pin=SecretSource("PIN", "--pin")) as key:
        signature = key.sign(message)

The module (the vendor's ``.so``) is ``--pkcs11-module``, else ``$CMSPATCH_PKCS11_MODULE``, else the URI's
``module-path``. The token is found by label, serial or slot, the key by object label or id
(``domain/trust/pkcs11_uri.py``). Keys are Ed25519 (CKM_EDDSA) where the token offers it, else ECDSA
P-256; a new private key is made sensitive, non-extractable and sign-only. What the token returns is put
in the form ``signatures.PublicKey.verify`` expects (ECDSA r||s becomes DER; Ed25519 is already the 64
raw bytes), so verification does not know or care that a token signed.

The PIN is read once (``trust_files.read_secret``), handed to the library, and never printed, logged or
kept beyond the session. Every library failure becomes a ``UsageError``/``KeyLocked`` with a stable
reason code: a wrong PIN is ``wrong-pin``, a missing token ``pkcs11-token-not-found``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from orchestrator.adapters.trust_files import SecretSource, read_secret
from orchestrator.domain.trust.pkcs11_uri import Pkcs11Uri
from orchestrator.domain.trust.signatures import (
    Algorithm,
    KeyLocked,
    PublicKey,
    ecdsa_digest,
    ecdsa_raw_to_der,
    public_key_from_raw,
)
from orchestrator.errors import UsageError

MODULE_ENV = "CMSPATCH_PKCS11_MODULE"
# DER of the curve parameters a token reports (CKA_EC_PARAMS): named-curve OIDs and RFC 8410's name.
_ED25519_PARAMS = (bytes.fromhex("06032b6570"), b"\x13\x0cedwards25519")
_CURVES = {bytes.fromhex("06082a8648ce3d030107"): Algorithm.ECDSA_P256,
           bytes.fromhex("06052b81040022"): Algorithm.ECDSA_P384}
TOKEN_ALGORITHMS = ("ed25519", "ecdsa-p256", "ecdsa-p384")


def module_path(uri: Pkcs11Uri, flag: str | None) -> str:
    path = flag or os.environ.get(MODULE_ENV) or uri.module_path
    if not path:
        raise UsageError(f"which PKCS#11 module? give --pkcs11-module, set {MODULE_ENV}, or add "
                         "?module-path=... to the URI (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)",
                         reason="pkcs11-module-needed")
    return path


def _library(path: str) -> Any:
    import pkcs11  # imported here: file keys and verification never need the C library

    try:
        return pkcs11.lib(path)
    except (OSError, RuntimeError) as exc:
        raise UsageError(f"PKCS#11 module {path}: cannot be loaded ({exc})",
                         reason="pkcs11-module-unusable") from exc


def _octets(value: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING around the point (some tokens give the bare point)."""
    if len(value) >= 2 and value[0] == 0x04:
        length, start = value[1], 2
        if length & 0x80:
            count = length & 0x7F
            length, start = int.from_bytes(value[2:2 + count], "big"), 2 + count
        if start + length == len(value):
            return value[start:]
    return value


@dataclass
class TokenKey:
    """A key on a token, in an open logged-in session: a ``signatures.Signer``."""

    public: PublicKey
    token_label: str
    token_serial: str
    object_label: str
    _private: Any = field(repr=False)

    @property
    def keyid(self) -> str:
        return self.public.keyid

    def custody(self) -> dict[str, Any]:
        return {"kind": "pkcs11", "token": self.token_label, "serial": self.token_serial,
                "object": self.object_label}

    def sign(self, message: bytes) -> bytes:
        from pkcs11 import Mechanism
        from pkcs11.exceptions import PKCS11Error

        try:
            if self.public.algorithm is Algorithm.ED25519:
                return bytes(self._private.sign(message, mechanism=Mechanism.EDDSA))
            raw = self._private.sign(ecdsa_digest(self.public.algorithm, message), mechanism=Mechanism.ECDSA)
        except PKCS11Error as exc:
            raise UsageError(f"token {self.token_label}: signing failed ({type(exc).__name__})",
                             reason="pkcs11-error") from exc
        return ecdsa_raw_to_der(bytes(raw))


def _algorithm_of(public: Any) -> Algorithm:
    from pkcs11 import Attribute

    params = bytes(public[Attribute.EC_PARAMS])
    if params in _ED25519_PARAMS:
        return Algorithm.ED25519
    if params in _CURVES:
        return _CURVES[params]
    raise UsageError(f"the token's key is on a curve cmspatch does not use (EC_PARAMS {params.hex()})",
                     reason="key-invalid")


def _find(session: Any, uri: Pkcs11Uri, object_class: Any) -> Any | None:
    from pkcs11 import Attribute

    template: dict[Any, Any] = {Attribute.CLASS: object_class}
    if uri.object is not None:
        template[Attribute.LABEL] = uri.object
    if uri.id is not None:
        template[Attribute.ID] = uri.id
    found = list(session.get_objects(template))
    if len(found) > 1:
        raise UsageError(f"{uri.render()} matches {len(found)} keys; add id=... to pick one",
                         reason="pkcs11-key-ambiguous")
    return found[0] if found else None


def _generate(session: Any, uri: Pkcs11Uri, algorithm: str) -> None:
    from pkcs11 import Attribute, KeyType, Mechanism
    from pkcs11.util.ec import encode_named_curve_parameters

    label = uri.object or ""
    common = {Attribute.TOKEN: True, Attribute.LABEL: label, **({Attribute.ID: uri.id} if uri.id else {})}
    private = {**common, Attribute.PRIVATE: True, Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False,
               Attribute.SIGN: True, Attribute.DECRYPT: False, Attribute.UNWRAP: False,
               Attribute.DERIVE: False}
    public = {**common, Attribute.VERIFY: True, Attribute.ENCRYPT: False, Attribute.WRAP: False}
    if algorithm == "ed25519":
        kind, curve, mechanism = KeyType.EC_EDWARDS, "1.3.101.112", Mechanism.EC_EDWARDS_KEY_PAIR_GEN
    else:
        kind, mechanism = KeyType.EC, Mechanism.EC_KEY_PAIR_GEN
        curve = "secp384r1" if algorithm == "ecdsa-p384" else "secp256r1"
    params = session.create_domain_parameters(
        kind, {Attribute.EC_PARAMS: encode_named_curve_parameters(curve)}, local=True)
    params.generate_keypair(store=True, mechanism=mechanism, public_template=public, private_template=private)


def _pick_algorithm(token: Any, wanted: str | None) -> str:
    from pkcs11 import Mechanism

    if wanted is not None:
        if wanted not in TOKEN_ALGORITHMS:
            raise UsageError(f"--algorithm {wanted}: a token key is one of {', '.join(TOKEN_ALGORITHMS)}",
                             reason="key-invalid")
        return wanted
    return "ed25519" if Mechanism.EDDSA in set(token.slot.get_mechanisms()) else "ecdsa-p256"


@contextlib.contextmanager
def open_token_key(uri: Pkcs11Uri, *, module: str | None, pin: SecretSource, create: str | None = None,
                   allow_create: bool = False) -> Iterator[tuple[TokenKey, bool]]:
    """Log in to the token ``uri`` names and yield (its key, whether it was made now). With
    ``allow_create`` a key that is not there is generated (``create``: algorithm, default Ed25519 where
    supported, else ECDSA P-256); otherwise a missing key is ``pkcs11-key-not-found``."""
    from pkcs11 import Attribute, ObjectClass
    from pkcs11.exceptions import (
        PinIncorrect,
        PinLenRange,
        PinLocked,
        PKCS11Error,
    )

    library = _library(module_path(uri, module))
    selector: dict[str, Any] = {}
    if uri.token is not None:
        selector["token_label"] = uri.token
    if uri.serial is not None:
        selector["token_serial"] = uri.serial.encode("utf-8")
    try:
        tokens = [t for t in library.get_tokens(**selector)
                  if uri.slot_id is None or t.slot.slot_id == uri.slot_id]
    except PKCS11Error as exc:
        raise UsageError(f"PKCS#11: cannot list tokens ({type(exc).__name__})",
                         reason="pkcs11-error") from exc
    if not tokens:
        raise UsageError(f"no token matches {uri.render()}", reason="pkcs11-token-not-found")
    if len(tokens) > 1:
        raise UsageError(f"{len(tokens)} tokens match {uri.render()}; add serial=...",
                         reason="pkcs11-token-ambiguous")
    token = tokens[0]
    secret = read_secret(pin, f"PIN of token {token.label}: ").decode("utf-8", "replace")
    try:
        with token.open(user_pin=secret, rw=allow_create) as session:
            del secret
            made = False
            private = _find(session, uri, ObjectClass.PRIVATE_KEY)
            if private is None and allow_create:
                _generate(session, uri, _pick_algorithm(token, create))
                private, made = _find(session, uri, ObjectClass.PRIVATE_KEY), True
            if private is None:
                raise UsageError(f"no private key {uri.render()} on the token", reason="pkcs11-key-not-found")
            public_object = _find(session, uri, ObjectClass.PUBLIC_KEY)
            if public_object is None:
                raise UsageError(f"{uri.render()}: the token holds the private key but no public key object",
                                 reason="pkcs11-key-not-found")
            algorithm = _algorithm_of(public_object)
            public = public_key_from_raw(algorithm, _octets(bytes(public_object[Attribute.EC_POINT])),
                                         source=uri.render())
            serial = bytes(token.serial).decode("ascii", "replace").strip() if isinstance(
                token.serial, bytes) else str(token.serial).strip()
            yield TokenKey(public=public, token_label=str(token.label).strip(), token_serial=serial,
                           object_label=str(private[Attribute.LABEL]), _private=private), made
    except (PinIncorrect, PinLenRange) as exc:
        raise KeyLocked(f"token {token.label}: wrong PIN", reason="wrong-pin") from exc
    except PinLocked as exc:
        raise KeyLocked(f"token {token.label}: the PIN is locked (too many wrong tries)",
                        reason="pin-locked") from exc
    except PKCS11Error as exc:
        raise UsageError(f"token {token.label}: {type(exc).__name__}", reason="pkcs11-error") from exc
