"""RFC 7512 ``pkcs11:`` URIs: which token, which key object, which module -- never the PIN.

    pkcs11:token=Hospital%20CA;object=biomed-2026?module-path=/usr/lib/softhsm/libsofthsm2.so

Path attributes (``;``-separated) pick the token and the object; query attributes (``&``-separated,
after ``?``) may name the module. Values are percent-decoded (``%20`` is a space, ``id`` is raw bytes,
usually written ``%01%02``). Refused, with the attribute named: a ``pin-value`` or ``pin-source``
(a PIN in a URI ends up in shell history, process lists and logs; the PIN comes from a prompt,
``--pin-file`` or ``--pin-env``), an attribute given twice, an attribute this parser does not know, a
bad percent escape. Pure: no I/O, so the whole grammar is tested without a token.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from orchestrator.errors import UsageError

SCHEME = "pkcs11:"
PATH_ATTRIBUTES = ("token", "manufacturer", "serial", "model", "library-manufacturer",
                   "library-description", "library-version", "object", "type", "id", "slot-description",
                   "slot-manufacturer", "slot-id")
QUERY_ATTRIBUTES = ("module-name", "module-path")
PIN_ATTRIBUTES = ("pin-value", "pin-source")
_NAME = re.compile(r"[a-z][a-z0-9-]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_MAX_URI = 4096


@dataclass(frozen=True)
class Pkcs11Uri:
    token: str | None = None
    serial: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    object: str | None = None
    id: bytes | None = None
    type: str | None = None
    slot_id: int | None = None
    module_path: str | None = None
    module_name: str | None = None

    def render(self) -> str:
        """A canonical URI for reports and the policy (values percent-encoded, no module, no PIN)."""
        parts = [f"{name}={_encode(value)}" for name, value in (
            ("token", self.token), ("serial", self.serial), ("manufacturer", self.manufacturer),
            ("model", self.model), ("object", self.object), ("type", self.type)) if value is not None]
        if self.id is not None:
            parts.append("id=" + "".join(f"%{b:02x}" for b in self.id))
        if self.slot_id is not None:
            parts.append(f"slot-id={self.slot_id}")
        return SCHEME + ";".join(parts)


def _encode(value: str) -> str:
    return "".join(c if c.isascii() and (c.isalnum() or c in "-._~:[]@!$'()*+,=&") else
                   "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in value)


def is_pkcs11_uri(text: str) -> bool:
    return text.startswith(SCHEME)


def _refuse(uri: str, message: str) -> UsageError:
    return UsageError(f"PKCS#11 URI: {message}", reason="pkcs11-uri-invalid")


def _attributes(text: str, separator: str, allowed: tuple[str, ...], uri: str) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for item in filter(None, text.split(separator)):
        name, equals, value = item.partition("=")
        name = name.lower()
        if name in PIN_ATTRIBUTES:
            raise UsageError(f"PKCS#11 URI: {name} is refused: a PIN never goes in the URI (it would show in "
                             "shell history and process lists); use the prompt, --pin-file or --pin-env",
                             reason="pkcs11-pin-in-uri")
        if not equals or not _NAME.fullmatch(name):
            raise _refuse(uri, f"{item!r} is not NAME=VALUE")
        if name not in allowed:
            raise _refuse(uri, f"unknown attribute {name!r} (known: {', '.join(allowed)})")
        if name in found:
            raise _refuse(uri, f"attribute {name!r} given twice")
        if _BAD_ESCAPE.search(value):
            raise _refuse(uri, f"{name}: '%' must be followed by two hex digits")
        if any(c.isspace() or not c.isprintable() for c in value):
            raise _refuse(uri, f"{name}: spaces and control characters must be percent-encoded")
        found[name] = unquote_to_bytes(value)
    return found


def _text(raw: bytes | None, name: str, uri: str) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _refuse(uri, f"{name} is not UTF-8 once decoded") from exc


def parse_pkcs11_uri(uri: str) -> Pkcs11Uri:
    """Parse ``uri``; a URI that cannot pick one key on one token is refused (``pkcs11-uri-invalid``)."""
    if len(uri) > _MAX_URI:
        raise _refuse(uri, "too long")
    if not uri[: len(SCHEME)].lower() == SCHEME:
        raise _refuse(uri, f"must start with {SCHEME!r}")
    path, _, query = uri[len(SCHEME):].partition("?")
    if "#" in query or "#" in path:
        raise _refuse(uri, "'#' must be percent-encoded")
    attrs = _attributes(path, ";", PATH_ATTRIBUTES, uri)
    for name, value in _attributes(query, "&", QUERY_ATTRIBUTES + PATH_ATTRIBUTES, uri).items():
        if name in attrs:
            raise _refuse(uri, f"attribute {name!r} given twice")
        if name not in QUERY_ATTRIBUTES:
            raise _refuse(uri, f"{name!r} is a path attribute; put it before the '?'")
        attrs[name] = value
    text = {name: _text(attrs.get(name), name, uri) for name in
            ("token", "serial", "manufacturer", "model", "object", "type", "module-path", "module-name",
             "slot-id")}
    if text["type"] is not None and text["type"] not in ("private", "public"):
        raise _refuse(uri, f"type={text['type']!r}: a signing key is type=private (or public)")
    slot_id = None
    if text["slot-id"] is not None:
        if not text["slot-id"].isdigit():
            raise _refuse(uri, "slot-id must be a decimal number")
        slot_id = int(text["slot-id"])
    parsed = Pkcs11Uri(token=text["token"], serial=text["serial"], manufacturer=text["manufacturer"],
                       model=text["model"], object=text["object"], id=attrs.get("id"), type=text["type"],
                       slot_id=slot_id, module_path=text["module-path"], module_name=text["module-name"])
    if parsed.token is None and parsed.serial is None and parsed.slot_id is None:
        raise _refuse(uri, "name the token (token=LABEL, serial=... or slot-id=...)")
    if parsed.object is None and parsed.id is None:
        raise _refuse(uri, "name the key (object=LABEL or id=...)")
    return parsed
