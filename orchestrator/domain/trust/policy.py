"""The trust policy: which keys the hospital trusts, in which role, which are revoked, and how many of
which roles must sign before a package moves.

    version: 1
    keys:
      - id: 9f2c...            # SHA-256 of the key's SPKI DER; optional, checked when given
        role: hospital-biomed  # vendor | hospital-biomed | hospital-security
        owner: "A. Rossi, Biomedical Engineering"
        custody: {kind: pkcs11, token: Biomed, serial: 5f0c..., object: biomed}  # or {kind: file,
        public_key: |                                                           #     encrypted: true}
          -----BEGIN PUBLIC KEY-----
          ...
    revoked:                   # signatures by these keys no longer count; old manifests need no re-signing
      - id: 41aa...
        reason: "laptop stolen"
        date: "2026-11-02"
    thresholds:                # any one rule suffices
      - name: vendor
        require: {vendor: 1}
      - name: hospital-two-person
        require: {hospital-biomed: 1, hospital-security: 1}

A key has exactly one role (a key id may appear once), so "1 biomed + 1 security" always means two
distinct keys; a key that signs twice counts once. Rotation is adding a key to a role; revocation is
listing its id under ``revoked``. Roles are a closed set on purpose: a misspelt role would otherwise make
a rule silently unsatisfiable or a key silently useless. Parsing is pure: it takes the file's text.

``custody`` says where the private half lives, as ``keys new`` found it: a key file (encrypted or not)
or a PKCS#11 token (its label and serial, and the object's label). It is a record for people -- which
token to fetch, which laptop to worry about when one is lost -- and never decides whether a signature
counts (a policy edited to say "token" does not make a file key safer); a key added from a public key
file (``keys add``, e.g. the vendor's) has no custody on record, and the report says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import yaml

from orchestrator.domain.strict_load import POLICY, Loaded, StrictLoadError, load_yaml_document
from orchestrator.domain.trust.reasons import Reason
from orchestrator.domain.trust.signatures import PublicKey, load_public_key
from orchestrator.errors import TrustError

ROLES: tuple[str, ...] = ("vendor", "hospital-biomed", "hospital-security")
POLICY_VERSION = 1
MAX_POLICY_BYTES = POLICY.max_bytes


CUSTODY_KINDS = ("file", "pkcs11")


@dataclass(frozen=True)
class Custody:
    """Where a key's private half is kept (see the module docstring)."""

    kind: str  # "file" | "pkcs11"
    encrypted: bool | None = None  # file: passphrase-protected or not
    token: str = ""  # pkcs11: the token's label
    serial: str = ""  # pkcs11: the token's serial number
    object: str = ""  # pkcs11: the key object's label

    def to_dict(self) -> dict[str, Any]:
        if self.kind == "file":
            return {"kind": "file", "encrypted": self.encrypted}
        return {"kind": self.kind, "token": self.token, "serial": self.serial, "object": self.object}

    def describe(self) -> str:
        if self.kind == "pkcs11":
            return f"token {self.token} serial {self.serial}, object {self.object}"
        if self.encrypted is None:
            return "key file (encryption not recorded)"
        return "encrypted key file" if self.encrypted else "UNENCRYPTED key file"

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Custody:
        """From a signer's ``custody()`` record (``keys new``), keeping only the fields named above."""
        if record.get("kind") == "pkcs11":
            return cls("pkcs11", token=str(record.get("token") or ""), serial=str(record.get("serial") or ""),
                       object=str(record.get("object") or ""))
        encrypted = record.get("encrypted")
        return cls("file", encrypted=encrypted if isinstance(encrypted, bool) else None)


@dataclass(frozen=True)
class TrustedKey:
    key: PublicKey
    role: str
    owner: str = ""
    custody: Custody | None = None  # None: not recorded (a key added from its public half)

    @property
    def keyid(self) -> str:
        return self.key.keyid


@dataclass(frozen=True)
class Revocation:
    keyid: str
    reason: str = ""
    date: str = ""


@dataclass(frozen=True)
class ThresholdRule:
    name: str
    require: tuple[tuple[str, int], ...]  # (role, how many distinct keys)

    def describe(self) -> str:
        return " + ".join(f"{n} {role}" for role, n in self.require)


DEFAULT_RULES: tuple[ThresholdRule, ...] = (
    ThresholdRule("vendor", (("vendor", 1),)),
    ThresholdRule("hospital-two-person", (("hospital-biomed", 1), ("hospital-security", 1))),
)


@dataclass(frozen=True)
class TrustPolicy:
    keys: tuple[TrustedKey, ...] = ()
    revoked: tuple[Revocation, ...] = ()
    rules: tuple[ThresholdRule, ...] = DEFAULT_RULES

    def key(self, keyid: str) -> TrustedKey | None:
        return next((k for k in self.keys if k.keyid == keyid), None)

    def revocation(self, keyid: str) -> Revocation | None:
        return next((r for r in self.revoked if r.keyid == keyid), None)

    def with_key(self, key: PublicKey, role: str, owner: str = "", custody: Custody | None = None
                 ) -> TrustPolicy:
        if role not in ROLES:
            raise _refuse(f"unknown role {role!r} (roles: {', '.join(ROLES)})")
        if self.key(key.keyid) is not None:
            raise _refuse(f"key {key.keyid} is already in the policy")
        return replace(self, keys=(*self.keys, TrustedKey(key=key, role=role, owner=owner, custody=custody)))

    def with_revocation(self, keyid: str, reason: str, date: str = "") -> TrustPolicy:
        if self.revocation(keyid) is not None:
            return self
        return replace(self, revoked=(*self.revoked, Revocation(keyid=keyid, reason=reason, date=date)))


def _refuse(message: str, filename: str = "policy") -> TrustError:
    return TrustError(f"{filename}: {message}", reason=Reason.POLICY_INVALID)


def _string(raw: dict[Any, Any], field: str, where: str, filename: str, *, required: bool) -> str:
    value = raw.get(field, "")
    if value is None or (value == "" and not required):
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _refuse(f"{where}.{field} must be a{' non-empty' if required else ''} string", filename)
    return value


def _keys(value: object, filename: str) -> tuple[TrustedKey, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _refuse("keys must be a list", filename)
    keys: list[TrustedKey] = []
    for index, raw in enumerate(value):
        where = f"keys[{index}]"
        if not isinstance(raw, dict) or not set(raw) <= {"id", "role", "owner", "custody", "public_key"}:
            raise _refuse(f"{where} must be an object with id, role, owner, custody and public_key", filename)
        role = _string(raw, "role", where, filename, required=True)
        if role not in ROLES:
            raise _refuse(f"{where}.role {role!r} is not one of {', '.join(ROLES)}", filename)
        pem = _string(raw, "public_key", where, filename, required=True)
        try:
            key = load_public_key(pem, source=f"{filename}: {where}.public_key")
        except TrustError as exc:  # a weak or unreadable key makes the whole policy unusable
            raise TrustError(exc.message, reason=exc.reason) from exc
        declared = _string(raw, "id", where, filename, required=False)
        if declared and declared != key.keyid:
            raise _refuse(f"{where}.id {declared} is not the id of its public key ({key.keyid})", filename)
        if any(k.keyid == key.keyid for k in keys):
            raise _refuse(f"{where}: key {key.keyid} is listed twice (one key, one role)", filename)
        owner = _string(raw, "owner", where, filename, required=False)
        custody = _custody(raw.get("custody"), f"{where}.custody", filename)
        keys.append(TrustedKey(key=key, role=role, owner=owner, custody=custody))
    return tuple(keys)


def _custody(value: object, where: str, filename: str) -> Custody | None:
    if value is None:
        return None
    fields = {"file": {"kind", "encrypted"}, "pkcs11": {"kind", "token", "serial", "object"}}
    kind = value.get("kind") if isinstance(value, dict) else None
    if not isinstance(value, dict) or kind not in fields or not set(value) <= fields[kind]:
        raise _refuse(f"{where} must be {{kind: file, encrypted: true|false}} or {{kind: pkcs11, token: "
                      "LABEL, serial: SERIAL, object: LABEL}", filename)
    if kind == "file":
        encrypted = value.get("encrypted")
        if encrypted is not None and not isinstance(encrypted, bool):
            raise _refuse(f"{where}.encrypted must be true or false", filename)
        return Custody("file", encrypted=encrypted)
    token, serial, label = (_string(value, f, where, filename, required=False) for f in ("token", "serial",
                                                                                      "object"))
    return Custody("pkcs11", token=token, serial=serial, object=label)


def _revoked(value: object, filename: str) -> tuple[Revocation, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _refuse("revoked must be a list", filename)
    result: list[Revocation] = []
    for index, raw in enumerate(value):
        where = f"revoked[{index}]"
        if isinstance(raw, str):
            raw = {"id": raw}
        if not isinstance(raw, dict) or not set(raw) <= {"id", "reason", "date"}:
            raise _refuse(f"{where} must be a key id or an object with id, reason and date", filename)
        keyid = _string(raw, "id", where, filename, required=True)
        date = raw.get("date", "")
        result.append(Revocation(keyid=keyid, reason=_string(raw, "reason", where, filename, required=False),
                                 date=str(date) if date is not None else ""))
    return tuple(result)


def _rules(value: object, filename: str) -> tuple[ThresholdRule, ...]:
    if value is None:
        return DEFAULT_RULES
    if not isinstance(value, list) or not value:
        raise _refuse("thresholds must be a non-empty list of rules", filename)
    rules: list[ThresholdRule] = []
    for index, raw in enumerate(value):
        where = f"thresholds[{index}]"
        if not isinstance(raw, dict) or set(raw) != {"name", "require"}:
            raise _refuse(f"{where} must be an object with name and require", filename)
        name = _string(raw, "name", where, filename, required=True)
        require = raw["require"]
        if not isinstance(require, dict) or not require:
            raise _refuse(f"{where}.require must map roles to counts", filename)
        pairs: list[tuple[str, int]] = []
        for role, count in require.items():
            if role not in ROLES:
                raise _refuse(f"{where}.require: {role!r} is not one of {', '.join(ROLES)}", filename)
            if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
                raise _refuse(f"{where}.require.{role} must be an integer from 1 to 100", filename)
            pairs.append((role, count))
        rules.append(ThresholdRule(name=name, require=tuple(pairs)))
    return tuple(rules)


def parse_policy(text: str | bytes, filename: str = "policy") -> TrustPolicy:
    """Read a trust policy; raises ``TrustError`` (policy-invalid, or key-invalid / key-too-weak for a
    key that cannot be trusted) and nothing else. The file goes through the strict loader: a key given
    twice (a second ``revoked:`` that un-revokes a key, a second ``thresholds:`` that drops the
    two-person rule) refuses the whole policy, with its line."""
    try:
        loaded = load_yaml_document(text, filename, POLICY)
    except StrictLoadError as exc:
        raise TrustError(f"{exc.message} ({exc.reason})", reason=Reason.POLICY_INVALID) from exc
    try:
        return _policy(loaded.value, filename)
    except TrustError as exc:
        raise _located(exc, filename, loaded) from exc


_WHERE = re.compile(r"(version|keys|revoked|thresholds)(?:\[(\d+)\](?:\.(\w+))?)?\b")


def _located(exc: TrustError, filename: str, loaded: Loaded) -> TrustError:
    """The same refusal with the line of the entry it names (``keys[1].role`` -> ``policy.yaml:9``)."""
    prefix = f"{filename}: "
    found = _WHERE.match(exc.message, len(prefix)) if exc.message.startswith(prefix) else None
    if found is None:
        return exc
    section, index, member = found.groups()
    path: list[str | int] = [section]
    if index is not None:
        path.append(int(index))
        if member is not None:
            path.append(member)
    line = next((n for n in (loaded.line_of(tuple(path[:k])) for k in range(len(path), 0, -1)) if n), 0)
    if not line:
        return exc
    return TrustError(f"{filename}:{line}: {exc.message[len(prefix):]}", reason=exc.reason)


def _policy(doc: Any, filename: str) -> TrustPolicy:
    if not isinstance(doc, dict):
        raise _refuse("must be a YAML mapping with keys, revoked and thresholds", filename)
    unknown = set(doc) - {"version", "keys", "revoked", "thresholds"}
    if unknown:
        raise _refuse(f"unknown field(s): {', '.join(sorted(map(str, unknown)))}", filename)
    if doc.get("version", POLICY_VERSION) != POLICY_VERSION:
        raise _refuse(f"version must be {POLICY_VERSION}", filename)
    return TrustPolicy(keys=_keys(doc.get("keys"), filename), revoked=_revoked(doc.get("revoked"), filename),
                       rules=_rules(doc.get("thresholds"), filename))


class _LiteralDumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_LiteralDumper.add_representer(str, _str_presenter)


def render_policy(policy: TrustPolicy) -> str:
    doc = {
        "version": POLICY_VERSION,
        "keys": [{"id": k.keyid, "role": k.role, "owner": k.owner,
                  **({"custody": k.custody.to_dict()} if k.custody is not None else {}),
                  "public_key": k.key.pem}
                 for k in policy.keys],
        "revoked": [{"id": r.keyid, "reason": r.reason, "date": r.date} for r in policy.revoked],
        "thresholds": [{"name": r.name, "require": dict(r.require)} for r in policy.rules],
    }
    header = ("# cmspatch trust policy: keys by role, revoked keys, and the signature rules\n"
              "# (any one rule suffices). Key id = SHA-256 of the public key's SPKI DER.\n")
    return header + yaml.dump(doc, Dumper=_LiteralDumper, sort_keys=False, allow_unicode=True)
