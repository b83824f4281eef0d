"""The strict loader: one set of rules (size, UTF-8, duplicate keys, depth, aliases) for every input file."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.adapters.strict_files import load_json_file, load_yaml_file, read_capped
from orchestrator.domain import strict_load
from orchestrator.domain.strict_load import (
    CAMPAIGN_CONFIG,
    COLUMNS,
    INVENTORY,
    POLICY,
    STATE,
    Limits,
    StrictLoadError,
    compose_yaml,
    load_json,
    load_yaml,
    load_yaml_document,
)


def refusal(call: object, *args: object) -> StrictLoadError:
    with pytest.raises(StrictLoadError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


@pytest.mark.parametrize("limits", [POLICY, CAMPAIGN_CONFIG, COLUMNS, INVENTORY], ids=lambda x: x.what)
def test_a_yaml_key_given_twice_is_refused_with_its_line(limits: Limits) -> None:
    error = refusal(load_yaml, b"revoked:\n  - id: aa\nkeys: []\nrevoked: []\n", "f.yml", limits)
    assert error.reason == "duplicate-key" and (error.line, error.column) == (4, 1)
    assert "f.yml:4:1" in error.message and "first on line 1" in error.message


def test_yaml_keys_equal_once_loaded_are_duplicates() -> None:
    assert refusal(load_yaml, b"a:\n  yes: 1\n  true: 2\n", "f", CAMPAIGN_CONFIG).reason == "duplicate-key"
    assert refusal(load_yaml, b"1: a\n0x1: b\n", "f", CAMPAIGN_CONFIG).line == 2


def test_a_json_key_given_twice_is_refused_with_its_line() -> None:
    data = b'{\n  "version": 1,\n  "models": {"CMS8000": {"release": 2}},\n  "models": {}\n}\n'
    error = refusal(load_json, data, "state.json", STATE)
    assert error.reason == "duplicate-key" and error.line == 4 and "'models'" in error.message


def test_a_nested_json_duplicate_is_located_in_its_own_object() -> None:
    data = b'{"a": {"k": 1}, "b": {"k": 1,\n "k": 2}}'
    assert refusal(load_json, data, "s", STATE).line == 2


@pytest.mark.parametrize("limits", [POLICY, CAMPAIGN_CONFIG, STATE, COLUMNS, INVENTORY], ids=lambda x: x.what)
def test_a_file_over_its_size_cap_is_refused_before_parsing(limits: Limits, tmp_path: Path) -> None:
    big = tmp_path / "big"
    with open(big, "wb") as handle:  # sparse: the cap must be read from stat, not from the bytes
        handle.truncate(limits.max_bytes + 1)
    error = refusal(read_capped, big, limits)
    assert error.reason == "too-large" and limits.what in error.message
    assert refusal(load_yaml, b"#" * (limits.max_bytes + 1), "f", limits).reason == "too-large"


def test_a_pipe_is_bounded_by_what_is_read() -> None:
    tiny = Limits("test file", 16)
    assert refusal(read_capped, "/dev/zero", tiny).reason == "too-large"


@pytest.mark.parametrize("limits", [POLICY, CAMPAIGN_CONFIG, COLUMNS, INVENTORY], ids=lambda x: x.what)
@pytest.mark.parametrize("deep", [b"a: " + b"[" * 10_000 + b"]" * 10_000, b"a:\n" + b"".join(
    b"  " * i + b"- \n" for i in range(1, 200)) + b"  " * 200 + b"x\n"], ids=["flow", "block"])
def test_yaml_nested_beyond_the_depth_bound_is_refused(limits: Limits, deep: bytes) -> None:
    error = refusal(load_yaml, deep, "deep.yml", limits)
    assert error.reason == "too-deep" and error.line >= 1


def test_json_nested_beyond_the_depth_bound_is_refused() -> None:
    for depth in (65, 10_000, 200_000):
        data = b"[" * depth + b"]" * depth
        assert refusal(load_json, data, "s", STATE).reason == "too-deep"
    assert load_json(b"[" * 60 + b"]" * 60, "s", STATE) is not None


def test_sixty_four_levels_are_still_read() -> None:
    text = "a: " + "[" * 63 + "]" * 63 + "\n"
    assert load_yaml(text.encode(), "f", CAMPAIGN_CONFIG) == {"a": eval("[" * 63 + "]" * 63)}


@pytest.mark.parametrize("data", ["a: 1\n".encode("utf-16"), "a: 1\nb: 2\n".encode("utf-16-le"),
                                  "a: 1\nb: 2\n".encode("utf-16-be"), "a: 1\n".encode("utf-32")],
                         ids=["utf16-bom", "utf16le", "utf16be", "utf32"])
def test_utf16_and_utf32_files_are_refused_as_not_utf8(data: bytes) -> None:
    error = refusal(load_yaml, data, "c.yml", CAMPAIGN_CONFIG)
    assert error.reason == "not-utf8" and "UTF-8" in error.message and error.line == 1


def test_invalid_utf8_names_the_byte_line_and_column() -> None:
    error = refusal(load_yaml, b"a: 1\nb: caf\xe9\n", "c.yml", CAMPAIGN_CONFIG)
    assert (error.reason, error.line, error.column) == ("not-utf8", 2, 7)
    assert "byte 11 (0xe9)" in error.message
    assert refusal(load_json, b'{"a": "\xff"}', "s", STATE).reason == "not-utf8"


def test_a_utf8_byte_order_mark_is_tolerated() -> None:
    assert load_yaml(b"\xef\xbb\xbfa: 1\n", "f", CAMPAIGN_CONFIG) == {"a": 1}


def test_aliases_are_refused_where_a_file_has_no_use_for_them() -> None:
    error = refusal(load_yaml, b"a: &x [1]\nb: *x\n", "p.yml", POLICY)
    assert error.reason == "too-many-aliases" and error.line == 2


def test_billion_laughs_is_refused_by_the_expansion_budget() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    error = refusal(load_yaml, ("\n".join(lines) + "\n").encode(), "lol.yml", CAMPAIGN_CONFIG)
    assert error.reason == "too-many-nodes"
    assert refusal(load_yaml, b"a: &a [*a]\n", "loop.yml", CAMPAIGN_CONFIG).reason == "alias-loop"


def test_the_inventory_node_tree_gets_the_same_depth_and_alias_rules() -> None:
    deep = b"all: " + b"[" * 5000 + b"]" * 5000
    assert refusal(compose_yaml, deep, "inv.yml", INVENTORY).reason == "too-deep"
    bounded = Limits("inventory", 1 << 20, max_aliases=2)
    aliases = b"all:\n  vars: &v {a: 1}\n  x: *v\n  y: *v\n  z: *v\n"
    assert refusal(compose_yaml, aliases, "inv.yml", bounded).reason == "too-many-aliases"


def test_unsafe_tags_merge_keys_and_several_documents_are_refused() -> None:
    unsafe = b"a: !!python/object:os.system x\n"
    assert refusal(load_yaml, unsafe, "f", CAMPAIGN_CONFIG).reason == "yaml-syntax"
    assert refusal(load_yaml, b"b: &b {x: 1}\na:\n  <<: *b\n", "f", CAMPAIGN_CONFIG).reason == "merge-key"
    assert refusal(load_yaml, b"a: 1\n---\nb: 2\n", "f", CAMPAIGN_CONFIG).line == 2


def test_json_constants_that_are_not_json_are_refused() -> None:
    for bad in (b'{"a": NaN}', b'{"a": Infinity}', b"[-Infinity]"):
        assert refusal(load_json, bad, "s", STATE).reason == "json-syntax"


def test_positions_of_keys_are_kept_for_messages() -> None:
    loaded = load_yaml_document(b"a: 1\nb:\n  c: [x, y]\n", "f", CAMPAIGN_CONFIG)
    assert loaded.value == {"a": 1, "b": {"c": ["x", "y"]}}
    assert loaded.line_of(("b", "c")) == 3 and loaded.line_of(("a",)) == 1 and loaded.line_of(("zz",)) == 0


def test_file_adapters_read_and_locate(tmp_path: Path) -> None:
    (tmp_path / "c.yml").write_bytes(b"a: 1\n")
    (tmp_path / "s.json").write_bytes(b'{"a": 1}')
    assert load_yaml_file(tmp_path / "c.yml", CAMPAIGN_CONFIG) == {"a": 1}
    assert load_json_file(tmp_path / "s.json", STATE) == {"a": 1}
    assert refusal(read_capped, tmp_path / "missing", STATE).reason == "missing"
    assert refusal(read_capped, tmp_path, STATE).reason == "unreadable"
    assert refusal(read_capped, tmp_path / ("x" * 300), STATE).reason == "path-too-long"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4), max_leaves=20)


@settings(max_examples=150, deadline=None)
@given(json_values)
def test_whatever_json_and_yaml_write_the_loader_reads_back_unchanged(value: object) -> None:
    assert load_json(json.dumps(value).encode(), "v.json", STATE) == value
    assert load_yaml(yaml.safe_dump(value).encode(), "v.yml", CAMPAIGN_CONFIG) == value


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_a_value_or_a_located_refusal_never_another_error(data: bytes) -> None:
    for load, limits in ((load_yaml, CAMPAIGN_CONFIG), (load_json, STATE)):
        try:
            load(data, "x", limits)
        except StrictLoadError as exc:
            assert exc.reason and exc.file == "x"


def test_every_kind_is_bounded() -> None:
    kinds = [v for v in vars(strict_load).values() if isinstance(v, Limits)]
    assert len(kinds) >= 6 and all(k.max_bytes <= 16 << 20 and k.max_depth <= 128 for k in kinds)


# --- each file kind, through its own parser: the same four rules ------------------------------------

DEEP = b"a: " + b"[" * 10_000 + b"]" * 10_000 + b"\n"
UTF16 = "columns:\n  serial: S\n".encode("utf-16-le")


def _policy(data: bytes) -> str:
    from orchestrator.domain.trust.policy import parse_policy
    from orchestrator.errors import TrustError

    with pytest.raises(TrustError) as caught:
        parse_policy(data, "policy.yaml")
    assert caught.value.reason == "policy-invalid"
    return caught.value.message


def _state(data: bytes) -> str:
    from orchestrator.domain.trust.rollback import parse_state
    from orchestrator.errors import TrustError

    with pytest.raises(TrustError) as caught:
        parse_state(data, "state.json")
    assert caught.value.reason == "state-invalid"
    return caught.value.message


def _columns(data: bytes) -> str:
    from orchestrator.errors import ExportError
    from orchestrator.exports.columns import parse_columns

    with pytest.raises(ExportError) as caught:
        parse_columns(data, "columns.yml")
    assert caught.value.reason == "columns-invalid"
    return caught.value.message


def _inventory(data: bytes) -> str:
    from orchestrator.adapters.inventory_file import load_inventory
    from orchestrator.errors import InventoryError

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "inv.yml"
        path.write_bytes(data.replace(b"columns:", b"all:"))
        with pytest.raises(InventoryError) as caught:
            load_inventory(path)
    return " ".join(f"{p} ({p.code})" for p in caught.value.problems)


@pytest.mark.parametrize("parse", [_policy, _columns, _inventory], ids=["policy", "columns", "inventory"])
def test_each_yaml_kind_refuses_duplicates_depth_encoding_and_size(parse: Callable[[bytes], str]) -> None:
    assert "duplicate-key" in parse(b"columns: {}\ncolumns: {}\n")
    assert "too-deep" in parse(DEEP)
    assert "not-utf8" in parse(UTF16)
    assert "not-utf8" in parse(b"keys: caf\xe9\n")
    assert "too-large" in parse(b"#" * (16 << 20))


def test_the_state_refuses_duplicates_depth_encoding_and_size() -> None:
    assert "duplicate-key" in _state(b'{"version": 1, "models": {}, "models": {}}')
    assert "too-deep" in _state(b"[" * 10_000 + b"]" * 10_000)
    assert "not-utf8" in _state('{"version": 1}'.encode("utf-16"))
    assert "too-large" in _state(b" " * (2 << 20))


def test_an_awx_job_event_goes_through_the_same_loader(tmp_path: Path) -> None:
    from orchestrator.adapters.awx_import import read_events
    from orchestrator.errors import UsageError

    (tmp_path / "job_events").mkdir()
    (tmp_path / "job_events" / "1-a.json").write_bytes(b'{"event": "runner_on_ok",\n "event": "x"}')
    with pytest.raises(UsageError) as caught:
        read_events(tmp_path)
    assert caught.value.reason == "import-bad-event" and "1-a.json:2:2" in caught.value.message
    assert "duplicate-key" in caught.value.message


def test_the_manifest_envelope_refuses_duplicates_depth_encoding_and_constants() -> None:
    from orchestrator.domain.trust.envelope import parse_envelope
    from orchestrator.errors import TrustError

    for data, reason in ((b'{"payloadType": "a", "payloadType": "b"}', "duplicate-key"),
                         (b'{"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "too-deep"),
                         ('{"payloadType": "a"}'.encode("utf-16"), "not-utf8"),
                         (b'{"payloadType": NaN}', "json-syntax")):
        with pytest.raises(TrustError) as caught:
            parse_envelope(data)
        assert caught.value.reason == "manifest-invalid" and reason in caught.value.message
