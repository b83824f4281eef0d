"""The one strict reader of every YAML and JSON file cmspatch takes from a person: bytes in, a value out.

Inventory, trust policy, campaign config, anti-rollback state, export column maps and AWX job events
all come through here, so the rules below hold for every one of them and cannot be forgotten by the
next file kind:

- **Bounded size**, checked before parsing (the adapter ``adapters.strict_files`` also stats the file
  before reading it): a policy pointed at a disk image is refused unread.
- **UTF-8 only.** A UTF-16 file (with or without a byte-order mark) or invalid UTF-8 is refused with the
  byte offset, line and column, not decoded by guessing. A UTF-8 byte-order mark is tolerated.
- **Duplicate mapping keys refused.** PyYAML and ``json`` silently keep the last of two equal keys: a
  second ``revoked: []`` at the end of a trust policy would un-revoke a stolen key. Keys are compared
  as loaded (``yes``/``true``, ``1``/``0x1`` are the same key to YAML 1.1, hence duplicates here).
- **Bounded depth** (nesting, checked on the event stream before anything recursive runs, so 10,000
  nested brackets are a located refusal, never a ``RecursionError``) and **bounded expansion**: aliases
  are counted, a value reached through aliases counts each time it is reached, and an alias that
  contains itself is refused (the "billion laughs").
- Every refusal is a ``StrictLoadError`` with file, line, column and a stable ``reason``; callers turn
  it into their own error family (``InventoryError``, ``TrustError``...) without losing the position.

Deliberately left out: YAML merge keys (``<<``) and custom tags outside the inventory (which keeps its
own node-tree reader, ``inventory_tree``, for line numbers and merges, and uses ``compose_yaml`` here for
the same size, encoding and depth rules), JSON ``NaN``/``Infinity`` (not JSON), and multi-document
streams. Positions are 1-based; a column counts characters (bytes for encoding errors).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import AliasEvent, CollectionEndEvent, CollectionStartEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orchestrator.errors import UsageError

MIB = 1 << 20
# libyaml when PyYAML was built with it: the same YAML 1.1 rules and marks, ten times faster.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
MAP_TAG = "tag:yaml.org,2002:map"
SEQ_TAG = "tag:yaml.org,2002:seq"
MERGE_TAG = "tag:yaml.org,2002:merge"
Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Limits:
    """What one kind of file may be. ``what`` names it in messages; ``hint`` says what to do instead."""

    what: str
    max_bytes: int
    max_depth: int = 64
    max_nodes: int = 100_000  # values, counting each time an alias repeats one
    max_aliases: int = 1_000
    hint: str = ""


POLICY = Limits("trust policy", 1 * MIB, max_nodes=20_000, max_aliases=0)
CAMPAIGN_CONFIG = Limits("campaign config", 1 * MIB, max_nodes=20_000)
MANIFEST = Limits("manifest", 1 * MIB, max_nodes=50_000, max_aliases=0)
STATE = Limits("anti-rollback state", 1 * MIB, max_nodes=50_000, max_aliases=0)
COLUMNS = Limits("column map", 1 * MIB, max_nodes=5_000, max_aliases=0)
JOB_EVENT = Limits("job event", 16 * MIB, max_depth=128, max_nodes=2_000_000, max_aliases=0)
# ~270 bytes a monitor as the example inventory writes them (more with comments): 4 MiB holds 10,000 to
# 15,000 monitors, beyond any one hospital group's fleet, and such a file is checked in a few seconds
# (2,000 monitors: about 0.7 s). The cap is checked on the file's size before a byte is read.
INVENTORY = Limits("inventory", 4 * MIB, max_aliases=50_000,
                   hint="split the fleet into one inventory per site (cmspatch works per inventory)")


class StrictLoadError(UsageError):
    """An input file refused by the strict loader, located as precisely as the rule allows."""

    reason = "bad-input"

    def __init__(self, file: str, line: int, column: int, detail: str, reason: str) -> None:
        self.file, self.line, self.column, self.detail = file, line, column, detail
        super().__init__(f"{self.where}: {detail}", reason=reason)

    @property
    def where(self) -> str:
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}" + (f":{self.column}" if self.column else "")


@dataclass(frozen=True)
class Loaded:
    """A loaded value and where each part of it was written: ``line_of(("thresholds", 0, "require"))``."""

    value: Any
    positions: dict[Path_, tuple[int, int]] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int:
        return self.positions.get(tuple(path), (0, 0))[0]


def _too_deep(limits: Limits) -> str:
    return f"nested more than {limits.max_depth} levels deep, the limit for the {limits.what}"


def _size_text(n: int) -> str:
    return f"{n / MIB:.1f} MiB" if n >= MIB else f"{n} bytes"


def check_size(size: int, name: str, limits: Limits) -> None:
    if size > limits.max_bytes:
        hint = f"; {limits.hint}" if limits.hint else ""
        raise StrictLoadError(name, 0, 0, f"the {limits.what} is {_size_text(size)}, more than the "
                              f"{_size_text(limits.max_bytes)} cmspatch reads for one{hint}", "too-large")


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def decode_text(data: bytes, name: str, limits: Limits) -> str:
    """UTF-8 text (a UTF-8 byte-order mark is dropped); anything else is refused with its position."""
    check_size(len(data), name, limits)
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    elif data.startswith(_UTF16_BOMS) or data.startswith(b"\x00\x00\xfe\xff"):
        raise StrictLoadError(name, 1, 1, f"the {limits.what} is UTF-16 or UTF-32 text (it starts with a "
                              "byte-order mark); save it as UTF-8", "not-utf8")
    nul = data.find(b"\x00")
    if nul >= 0:
        line, column = _byte_position(data, nul)
        guess = " (it looks like UTF-16 without a byte-order mark)" if _looks_utf16(data) else ""
        raise StrictLoadError(name, line, column, f"byte {nul} is a NUL byte, which text never holds{guess}; "
                              "save the file as UTF-8", "not-utf8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, column = _byte_position(data, exc.start)
        bad = f"byte {exc.start} (0x{data[exc.start]:02x})"
        raise StrictLoadError(name, line, column, f"not UTF-8 text: {bad} cannot start or continue a UTF-8 "
                              "character; save the file as UTF-8", "not-utf8") from None


def _looks_utf16(data: bytes) -> bool:
    sample = data[:4096]
    return sample[1::2].count(0) > len(sample) // 4 or sample[0::2].count(0) > len(sample) // 4


def _byte_position(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, offset - line_start + 1


# --- YAML ------------------------------------------------------------------------------------------

def _mark_error(name: str, exc: yaml.YAMLError, text: str) -> StrictLoadError:
    """A PyYAML error, located. Only its ``problem``/``context`` words are kept, never its snippet of the
    offending line: that line may hold a password."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        line, column = (int(mark.line) + 1, int(mark.column) + 1) if mark is not None else (0, 0)
        what = exc.problem or exc.context or "syntax error"
        if "nesting depth" in what:  # libyaml's own bound (1,000), met before ours when one line nests
            return StrictLoadError(name, line, column, "nested too deeply", "too-deep")
        return StrictLoadError(name, line, column, f"YAML syntax error: {what}", "yaml-syntax")
    if isinstance(exc, yaml.reader.ReaderError):
        position = max(0, int(exc.position))
        line = text.count("\n", 0, position) + 1
        return StrictLoadError(name, line, 0, "YAML syntax error: the file contains a character YAML does "
                               "not allow (a control or non-printable character)", "yaml-syntax")
    return StrictLoadError(name, 0, 0, f"YAML syntax error: {type(exc).__name__}", "yaml-syntax")


def _at(name: str, mark: Any, detail: str, reason: str) -> StrictLoadError:
    line, column = (int(mark.line) + 1, int(mark.column) + 1) if mark is not None else (0, 0)
    return StrictLoadError(name, line, column, detail, reason)


def _check_events(text: str, name: str, limits: Limits) -> None:
    """Depth and alias count from libyaml's event stream, which is read without recursion, so a hostile
    nesting is refused before the (recursive) composer ever sees it."""
    depth = aliases = 0
    for event in yaml.parse(text, Loader=SAFE_LOADER):
        if isinstance(event, CollectionStartEvent):
            depth += 1
            if depth > limits.max_depth:
                raise _at(name, event.start_mark, _too_deep(limits), "too-deep")
        elif isinstance(event, CollectionEndEvent):
            depth -= 1
        elif isinstance(event, AliasEvent):
            aliases += 1
            if aliases > limits.max_aliases:
                detail = (f"more than {limits.max_aliases} YAML aliases (*name)" if limits.max_aliases
                          else f"YAML aliases (*name) are not accepted in a {limits.what}")
                raise _at(name, event.start_mark, detail, "too-many-aliases")


def compose_yaml(data: bytes | str, name: str, limits: Limits) -> Node | None:
    """The single document's node tree (None for an empty file), after the size, encoding, depth and alias
    rules. Duplicate keys are the caller's to judge on the nodes (``load_yaml`` refuses them)."""
    text = decode_text(data, name, limits) if isinstance(data, bytes) else data
    if isinstance(data, str):
        check_size(len(text.encode("utf-8", "surrogatepass")), name, limits)
    try:
        _check_events(text, name, limits)
        return yaml.compose(text, Loader=SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise _mark_error(name, exc, text) from None


class _Builder:
    """Values from nodes: scalars by PyYAML's safe rules, collections here (duplicates, budget, loops)."""

    def __init__(self, name: str, limits: Limits) -> None:
        self.name, self.limits = name, limits
        self.scalars = yaml.SafeLoader("")  # only its constructor is used: YAML 1.1 scalar rules
        self.budget = limits.max_nodes
        self.active: set[int] = set()
        self.positions: dict[Path_, tuple[int, int]] = {}

    def refuse(self, node: Node, detail: str, reason: str) -> StrictLoadError:
        return _at(self.name, node.start_mark, detail, reason)

    def build(self, node: Node, path: Path_, *, record: bool = True) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise self.refuse(node, f"more than {self.limits.max_nodes} values (counting what YAML aliases "
                              f"repeat), the limit for the {self.limits.what}", "too-many-nodes")
        if record:
            self.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, ScalarNode):
            try:
                return self.scalars.construct_object(node)
            except yaml.YAMLError as exc:
                raise _mark_error(self.name, exc, "") from None
        if id(node) in self.active:
            raise self.refuse(node, "a YAML alias refers to a value that contains it", "alias-loop")
        if len(path) >= self.limits.max_depth:
            raise self.refuse(node, _too_deep(self.limits), "too-deep")
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                if node.tag != SEQ_TAG:
                    raise self.refuse(node, f"unsupported YAML tag {node.tag!r}", "yaml-tag")
                return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
            assert isinstance(node, MappingNode)
            if node.tag != MAP_TAG:
                raise self.refuse(node, f"unsupported YAML tag {node.tag!r}", "yaml-tag")
            return self._mapping(node, path)
        finally:
            self.active.discard(id(node))

    def _mapping(self, node: MappingNode, path: Path_) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        first: dict[Any, int] = {}
        for knode, vnode in node.value:
            if knode.tag == MERGE_TAG:
                raise self.refuse(knode, f"YAML merge keys (<<) are not accepted in a {self.limits.what}; "
                                  "write the values out", "merge-key")
            if not isinstance(knode, ScalarNode):
                raise self.refuse(knode, "a mapping key must be a plain name", "bad-key")
            key = self.build(knode, path, record=False)
            if key in first:
                raise self.refuse(knode, f"{_shown(key)} is given twice in the same mapping (first on line "
                                  f"{first[key]}); a YAML reader would silently keep only the last one",
                                  "duplicate-key")
            first[key] = knode.start_mark.line + 1
            child = (*path, key if isinstance(key, str | int) else str(key))
            self.positions[child] = (knode.start_mark.line + 1, knode.start_mark.column + 1)
            result[key] = self.build(vnode, child)
        return result


def _shown(key: Any) -> str:
    return repr(key) if isinstance(key, str) else f"{key!r} (YAML reads it as {type(key).__name__})"


def load_yaml_document(data: bytes | str, name: str, limits: Limits) -> Loaded:
    """The file's value with the position of every key and item; raises ``StrictLoadError`` only."""
    root = compose_yaml(data, name, limits)
    if root is None:
        return Loaded(None, {})
    builder = _Builder(name, limits)
    try:
        value = builder.build(root, ())
    except RecursionError:  # unreachable with max_depth far below Python's limit; kept as a located refusal
        raise StrictLoadError(name, 0, 0, "nested too deeply", "too-deep") from None
    return Loaded(value, builder.positions)


def load_yaml(data: bytes | str, name: str, limits: Limits) -> Any:
    return load_yaml_document(data, name, limits).value


# --- JSON ------------------------------------------------------------------------------------------

class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


_JSON_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]:,]|[^\s{}\[\]:,"]+', re.S)


def _json_duplicate_at(text: str, wanted: str) -> int:
    """Offset of the first key repeated inside one object (run only once a duplicate is known to exist)."""
    stack: list[set[str] | None] = []
    previous = ""
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token in "{[":
            stack.append(set() if token == "{" else None)
        elif token in "}]":
            if stack:
                stack.pop()
        elif token.startswith('"') and stack and stack[-1] is not None and previous in "{,":
            key = json.loads(token)
            if key in stack[-1] and key == wanted:
                return match.start()
            stack[-1].add(key)
        previous = token if token in "{[,:}]" else "v"
    return -1


def _text_position(text: str, offset: int) -> tuple[int, int]:
    if offset < 0:
        return 0, 0
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def load_json(data: bytes, name: str, limits: Limits) -> Any:
    """A JSON value under the same rules as YAML (size, UTF-8, duplicate keys, depth, size in values)."""
    text = decode_text(data, name, limits)
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    except _DuplicateKey as dup:
        line, column = _text_position(text, _json_duplicate_at(text, dup.key))
        raise StrictLoadError(name, line, column, f"{dup.key!r} is given twice in the same object; a JSON "
                              "reader would silently keep only the last one", "duplicate-key") from None
    except json.JSONDecodeError as exc:
        raise StrictLoadError(name, exc.lineno, exc.colno, f"not valid JSON: {exc.msg}",
                              "json-syntax") from None
    except ValueError as exc:
        raise StrictLoadError(name, 0, 0, f"not valid JSON: {exc}", "json-syntax") from None
    except RecursionError:
        raise StrictLoadError(name, 0, 0, _too_deep(limits), "too-deep") from None
    _check_json_shape(value, name, limits)
    return value


def _check_json_shape(value: Any, name: str, limits: Limits) -> None:
    """Depth and value count, walked without recursion."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    count = 0
    while pending:
        item, depth = pending.pop()
        count += 1
        if count > limits.max_nodes:
            raise StrictLoadError(name, 0, 0, f"more than {limits.max_nodes} values, the limit for the "
                                  f"{limits.what}", "too-many-nodes")
        if isinstance(item, dict | list):
            if depth > limits.max_depth:
                raise StrictLoadError(name, 0, 0, _too_deep(limits), "too-deep")
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
