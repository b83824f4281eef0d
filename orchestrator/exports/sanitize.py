"""The last gate before a value leaves the journal for a document somebody else will read.

``model.py`` already copies only named fields; this module is the defence behind it. Evidence
``details`` are open-ended (each check puts what it measured there), so they are filtered by key: names
that hint at secrets or at a person (password, token, key material, patient, name, birth ...) are
dropped, and so is any value that looks like key material. Only scalars, short lists of scalars and one
level of scalar mappings (a path -> SHA-256 table) pass; anything deeper is summarised as its size,
never dumped. ``field_names`` survives on purpose: the domain rule is that the names of the leaked
patient fields may be shown, never their values.

Deliberately left out: recognising personal data inside arbitrary text (impossible to do reliably);
the rule instead is that no free-text field from an event is exported at all.
"""

from __future__ import annotations

import re
from typing import Any

MAX_TEXT = 300
MAX_LIST = 32
_DENY_KEY = re.compile(
    r"pass|secret|token|private|credential|cookie|session|auth|key_?material|pem|"
    r"patient|person|name|birth|dob|address_of|phone|mrn|admission|doctor|blood|height|weight|raw|payload",
    re.IGNORECASE,
)
_ALLOW_KEY = frozenset({"field_names", "patient_record", "patient_seen", "hostname", "host_name"})
_KEY_MATERIAL = re.compile(r"-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE|OPENSSH)|ssh-(ed25519|rsa) AAAA")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def text(value: object) -> str:
    """A single-line, bounded string; key material is replaced, never shown."""
    s = value if isinstance(value, str) else str(value)
    if _KEY_MATERIAL.search(s):
        return "[key material removed]"
    s = _CONTROL.sub(" ", s).replace("\n", " ")
    return s if len(s) <= MAX_TEXT else s[: MAX_TEXT - 1] + "\u2026"


def _allowed(key: str) -> bool:
    return key in _ALLOW_KEY or not _DENY_KEY.search(key)


def _scalar(value: object) -> str | int | float | bool | None:
    if value is None or isinstance(value, bool | int | float):
        return value
    return text(value)


def _mapping(value: dict[Any, Any]) -> dict[str, Any] | str:
    """One level of nesting (e.g. path -> SHA-256) is kept when it holds scalars; deeper is summarised."""
    if len(value) > MAX_LIST or any(isinstance(v, dict | list | tuple) for v in value.values()):
        return f"({len(value)} entries)"
    items = sorted(value.items(), key=lambda kv: str(kv[0]))
    return {text(k): _scalar(v) for k, v in items if _allowed(str(k))}


def details(raw: object) -> dict[str, Any]:
    """Evidence details reduced to what an auditor may read: allowed keys, scalar values."""
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {}
    for key in sorted(raw, key=str):
        name = str(key)
        if not _allowed(name):
            continue
        value = raw[key]
        if isinstance(value, list | tuple):
            items = [_scalar(v) for v in value[:MAX_LIST] if not isinstance(v, dict | list | tuple)]
            out[name] = items
        elif isinstance(value, dict):
            out[name] = _mapping(value)
        else:
            out[name] = _scalar(value)
    return out
