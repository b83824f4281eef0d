"""What each inventory variable may hold, checked once where it is written.

A value is judged at its definition (the line a person must edit), not once per host that inherits it:
a bad port in a ward's vars is one problem on one line, not thirty. Whether a host has everything it
needs is a separate, per-host question answered in ``inventory.py``.

Two rules hold for every variable, whatever its name: an address in a network the network guard refuses
(``domain.netguard``: 202.114.4.0/24 and the configured indicator networks), written anywhere in the value
(``ansible_host``, ``ansible_ssh_host``, a ``ProxyJump`` inside ``ansible_ssh_common_args``), is
``indicator-address``; and private key text (a PEM/OpenSSH armour line, or a key body pasted into a key
file field) is ``secret-in-inventory``, reported without ever echoing the value. A host *name* that
resolves to an indicator address cannot be seen here (no I/O): the adapters check resolved addresses.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from dataclasses import dataclass

import yaml
from yaml.nodes import Node, ScalarNode

from orchestrator.domain.devices import DeliveryPath
from orchestrator.domain.indicators import MODELS
from orchestrator.domain.inventory_tree import Var, is_null
from orchestrator.domain.netguard import current_guard
from orchestrator.domain.profile import NAME_RE

PASSWORD_KEYS = frozenset(
    {
        "ansible_password",
        "ansible_ssh_pass",
        "ansible_ssh_password",
        "ansible_become_password",
        "ansible_become_pass",
    }
)
TEXT_KEYS = frozenset(
    {
        "serial",
        "serial_number",
        "site",
        "ward",
        "bed",
        "asset_tag",
        "firmware",
        "ansible_user",
        "ansible_ssh_user",
        "ansible_ssh_private_key_file",
        "ansible_private_key_file",
        "cmspatch_known_hosts",
        "cmspatch_profile",
    }
)
ADDRESS_KEYS = frozenset({"ansible_host", "ansible_ssh_host"})  # where Ansible/OpenSSH connect to
KEY_FILE_KEYS = frozenset({"ansible_ssh_private_key_file", "ansible_private_key_file"})
# Armour of PEM, OpenSSH and PuTTY private keys, and the start of an OpenSSH key body ("openssh-key-v1").
_KEY_TEXT = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY|PRIVATE KEY-----|PuTTY-User-Key-File"
                       r"|b3BlbnNzaC1rZXktdjE")
_BASE64_BODY = re.compile(r"[A-Za-z0-9+/]{40,}={0,2}")
HOST_KEY_RE = re.compile(r"SHA256:([A-Za-z0-9+/]{43})=?")
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
HOSTNAME_RE = re.compile(rf"{_LABEL}(\.{_LABEL})*\.?")


class Invalid:
    """A value that was already reported as a problem; the host using it is not built."""


INVALID = Invalid()


@dataclass(frozen=True)
class Verdict:
    value: object  # the converted value, None when unset (null), INVALID when reported
    code: str = ""
    message: str = ""


def _construct(node: Node) -> object:
    """Convert a node the way Ansible's (safe) YAML loader would."""
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _text(node: Node) -> str | None:
    """A scalar exactly as written: ``bed: 01`` is bed "01", not the YAML 1.1 octal number 1."""
    if is_null(node):
        return None
    if not isinstance(node, ScalarNode):
        raise TypeError("not a scalar")
    return str(node.value)


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        pass
    if len(text) > 253 or not HOSTNAME_RE.fullmatch(text):
        return False
    return not text.rstrip(".").rsplit(".", 1)[-1].isdigit()  # 300.1.2.3 is a bad IP, not a host name


def is_host_key(text: str) -> bool:
    match = HOST_KEY_RE.fullmatch(text)
    if match is None:
        return False
    try:
        return len(base64.b64decode(match.group(1) + "=", validate=True)) == 32
    except (binascii.Error, ValueError):
        return False


def _scalars(node: Node, limit: int = 1000) -> list[str]:
    """The scalar texts inside a value (a list of ssh options, say); each shared node read once."""
    out: list[str] = []
    todo: list[Node] = [node]
    seen: set[int] = set()
    while todo and len(seen) < limit:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ScalarNode):
            out.append(str(current.value))
        elif isinstance(current.value, list):
            for item in current.value:
                todo.extend(item if isinstance(item, tuple) else (item,))
    return out


def looks_like_key_text(key: str, text: str) -> bool:
    """Private key material rather than a file name: an armour line anywhere, or, in a key file field,
    a value that spans lines or is one long base64 body (a DER key starts with ``MI``/``MC``)."""
    if _KEY_TEXT.search(text):
        return True
    if key not in KEY_FILE_KEYS and not key.endswith("_key_file"):
        return False
    compact = "".join(text.split())
    der_body = compact[:2] in ("MI", "MC") and _BASE64_BODY.fullmatch(compact) is not None
    return der_body or "\n" in text.strip()


def _refused_everywhere(var: Var) -> Verdict | None:
    """The two rules every variable obeys (see the module docstring), or None."""
    texts = _scalars(var.node)
    if any(looks_like_key_text(var.key, t) for t in texts):
        return Verdict(
            INVALID,
            "secret-in-inventory",
            f"{var.owner}: {var.key} holds private key text, not a key file path (value not shown); "
            "put the key in a file only the service account can read and give its path",
        )
    guard = current_guard()
    for text in texts:
        # An address field is one address (a legacy form like 3396469879 included); elsewhere, any
        # address written inside the text (``-o ProxyJump=service@202.114.4.7``).
        if var.key in ADDRESS_KEYS:
            net = guard.forbidden(text)
            hits = [(text.strip(), net)] if net is not None else []
        else:
            hits = guard.forbidden_in(text)
        if not hits:
            continue
        address, net = hits[0]
        return Verdict(
            INVALID,
            "indicator-address",
            f"{var.owner}: {var.key} points at {address}, in the indicator network {net}: cmspatch never "
            "connects to an indicator address (it only listens there, through the sinkhole)",
        )
    return None


def judge(var: Var) -> Verdict:
    """Convert and check one variable definition."""
    key, where = var.key, var.owner
    if key in PASSWORD_KEYS:
        # Never echo the value: this message ends up on terminals and in CI logs.
        return Verdict(
            INVALID,
            "password-in-clear",
            f"{where} sets {key}: a password in clear text in the inventory (value not shown); "
            "remove it and use ansible_ssh_private_key_file or cmspatch_ssh_agent: true",
        )
    refused = _refused_everywhere(var)
    if refused is not None:
        return refused
    node = var.node
    if key in TEXT_KEYS or key in ADDRESS_KEYS or key in ("model", "delivery", "host_key"):
        try:
            text = _text(node)
        except TypeError:
            return Verdict(
                INVALID, "bad-value", f"{where}: {key} must be a single value, not a list or mapping"
            )
        if text is None or text.strip() == "":
            return Verdict(None)
        text = text.strip()
        if key == "model" and text not in MODELS:
            hint = " (BfArM's spelling NM-120 is written MN-120 here)" if text.upper() == "NM-120" else ""
            return Verdict(
                INVALID, "unknown-model", f"{where}: model '{text}' is not one of {', '.join(MODELS)}{hint}"
            )
        if key == "delivery":
            try:
                return Verdict(DeliveryPath(text.lower()))
            except ValueError:
                return Verdict(
                    INVALID,
                    "unknown-delivery",
                    f"{where}: delivery '{text}' is not one of ssh, ansible, manual",
                )
        if key in ADDRESS_KEYS and not is_address(text):
            return Verdict(
                INVALID,
                "bad-address",
                f"{where}: {key} '{text}' is not an IPv4/IPv6 address or a host name",
            )
        if key == "cmspatch_profile" and not (NAME_RE.fullmatch(text) or text.endswith((".yml", ".yaml"))):
            return Verdict(
                INVALID,
                "bad-profile",
                f"{where}: cmspatch_profile '{text}' is neither a shipped profile's name (lowercase "
                "letters, digits, -) nor a .yml file",
            )
        if key == "host_key" and not is_host_key(text):
            return Verdict(
                INVALID,
                "bad-host-key",
                f"{where}: host_key must be a SHA256 fingerprint as `ssh-keygen -lf` prints it "
                "(SHA256: followed by 43 base64 characters)",
            )
        return Verdict(text)
    try:
        value = _construct(node)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError):
        return Verdict(INVALID, "bad-value", f"{where}: the value of {key} cannot be read")
    if key == "ansible_port":
        port = _as_int(value)
        if value is None:
            return Verdict(None)
        if port is None or not 1 <= port <= 65535:
            return Verdict(INVALID, "bad-port", f"{where}: ansible_port must be a number from 1 to 65535")
        return Verdict(port)
    if key == "cmspatch_ssh_agent" and not isinstance(value, bool | None):
        return Verdict(INVALID, "bad-value", f"{where}: cmspatch_ssh_agent must be true or false")
    if key == "ansible_group_priority" and value is not None and _as_int(value) is None:
        return Verdict(INVALID, "bad-value", f"{where}: ansible_group_priority must be a whole number")
    return Verdict(value)


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit() and len(value.strip()) < 8:
        return int(value.strip())
    return None
