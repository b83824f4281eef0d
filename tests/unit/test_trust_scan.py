"""The streaming backdoor scanner: same answers as the YARA rule's regexes, whatever the chunking."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.domain.indicators import INDICATOR_ADDRESS_PATTERN, MOUNT_PATTERN, MOUNT_STRING
from orchestrator.domain.trust.scan import (
    ADDRESS_LITERAL,
    MOUNT_LITERAL,
    MemberKind,
    StreamScanner,
    member_problem,
    scan_bytes,
)


def reference(data: bytes) -> list[tuple[str, int, str]]:
    found = [("mount-string", m.start(), m.group(0).decode()) for m in MOUNT_PATTERN.finditer(data)]
    found += [("indicator-address", m.start(), m.group(0).decode())
              for m in INDICATOR_ADDRESS_PATTERN.finditer(data)]
    return sorted(found)


def chunked(data: bytes, cuts: list[int]) -> list[tuple[str, int, str]]:
    scanner = StreamScanner()
    last = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        scanner.feed(data[last:cut])
        last = max(last, cut)
    scanner.feed(data[last:])
    return sorted((f.kind, f.offset, f.text) for f in scanner.close())


def test_literals_are_the_fixed_prefixes_of_the_yara_regexes() -> None:
    assert MOUNT_PATTERN.pattern.startswith(MOUNT_LITERAL.replace(b" ", b" "))
    assert INDICATOR_ADDRESS_PATTERN.pattern.startswith(rb"(?<![\d.])202\.114\.4\.")
    assert ADDRESS_LITERAL == b"202.114.4."


def test_mount_string_is_found() -> None:
    findings = scan_bytes(b"\x7fELF..." + MOUNT_STRING + b"\x00")
    assert [f.kind for f in findings] == ["mount-string", "indicator-address"]


def test_indicator_address_is_found_and_lookalikes_are_not() -> None:
    assert [f.text for f in scan_bytes(b"x 202.114.4.120:511 ")] == ["202.114.4.120"]
    assert scan_bytes(b"1202.114.4.5 and 202.114.4.1234 and 3.202.114.4.5") == []


@pytest.mark.parametrize("split", range(1, len(MOUNT_STRING) + 2))
def test_pattern_spanning_a_chunk_boundary_is_found_once(split: int) -> None:
    data = b"A" * 100 + MOUNT_STRING + b" tail"
    cut = 100 + split - 1
    assert chunked(data, [cut]) == reference(data)


def test_pattern_fed_one_byte_at_a_time_is_found_once() -> None:
    data = b"...202.114.4.119..." + MOUNT_STRING
    assert chunked(data, list(range(len(data)))) == reference(data)


def test_lookbehind_is_honoured_across_a_boundary() -> None:
    data = b"x" * 70 + b"1202.114.4.5 "
    assert chunked(data, [71]) == [] == reference(data)


PIECES = [b"202.114.4.", b"119", b"1", b".", b":/pm /mnt", b"mount -o nolock -t nfs ", b" ", b"\x00", b"7",
          b"202.114.4.12", b"x" * 40, b"y" * 150]
pieces = st.lists(st.sampled_from(PIECES), max_size=30)


@settings(max_examples=150, deadline=None)
@given(pieces, st.lists(st.integers(0, 2000), max_size=6))
def test_any_chunking_gives_the_same_findings_as_the_regexes(parts: list[bytes], cuts: list[int]) -> None:
    data = b"".join(parts)
    assert chunked(data, cuts) == reference(data)


@settings(max_examples=150, deadline=None)
@given(pieces, st.integers(1, 400))
def test_fixed_size_chunks_give_the_same_findings_as_the_regexes(parts: list[bytes], size: int) -> None:
    data = b"".join(parts)
    assert chunked(data, list(range(size, len(data), size))) == reference(data)


def test_findings_are_capped() -> None:
    scanner = StreamScanner(max_findings=3)
    scanner.feed(b" 202.114.4.1 " * 50)
    assert len(scanner.close()) == 3


@pytest.mark.parametrize(("name", "kind", "reason"), [
    ("/etc/passwd", MemberKind.FILE, "member-absolute-path"),
    ("C:/boot.ini", MemberKind.FILE, "member-absolute-path"),
    ("bin/../../etc/shadow", MemberKind.FILE, "member-path-traversal"),
    ("bin\\..\\..\\x", MemberKind.FILE, "member-path-traversal"),
    ("bin/monitor", MemberKind.SYMLINK, "member-link"),
    ("bin/monitor", MemberKind.HARDLINK, "member-link"),
    ("dev/sda", MemberKind.DEVICE, "member-device"),
    ("bin/monitor", MemberKind.FILE, None),
    ("./bin/..monitor", MemberKind.FILE, None),
])
def test_member_rules(name: str, kind: MemberKind, reason: str | None) -> None:
    assert member_problem(name, kind) == reason
