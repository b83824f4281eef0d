from __future__ import annotations

import pytest

from orchestrator.domain.indicators import (
    INDICATOR_ADDRESS_PATTERN,
    MOUNT_PATTERN,
    MOUNT_STRING,
    IndicatorMap,
    UnsafeMapping,
)


def test_indicator_address_maps_onto_loopback_host_byte_for_host_byte() -> None:
    m = IndicatorMap("127.114.9")
    assert m.cms_server == "127.114.9.119"
    assert m.hl7_server == "127.114.9.120"
    assert m.unmap("127.114.9.119") == "202.114.4.119"
    assert m.unmap("127.0.0.1") is None


@pytest.mark.parametrize("prefix", ["202.114.4", "10.0.0", "192.168.1", "not.an.address"])
def test_mapping_onto_anything_but_loopback_is_refused(prefix: str) -> None:
    with pytest.raises(UnsafeMapping):
        IndicatorMap(prefix)


def test_mapping_a_non_indicator_address_is_refused() -> None:
    with pytest.raises(UnsafeMapping):
        IndicatorMap().map("8.8.8.8")


def test_yara_pattern_matches_the_mount_string_and_any_address() -> None:
    assert MOUNT_PATTERN.search(b"\x00" + MOUNT_STRING + b"\x00")
    assert MOUNT_PATTERN.search(b"mount -o nolock -t nfs 10.1.2.3:/pm /mnt")
    assert not MOUNT_PATTERN.search(b"mount -o nolock -t nfs server:/pm /mnt")


def test_indicator_address_pattern_does_not_match_longer_numbers() -> None:
    assert INDICATOR_ADDRESS_PATTERN.search(b"x202.114.4.120y")
    assert not INDICATOR_ADDRESS_PATTERN.search(b"1202.114.4.12")
    assert not INDICATOR_ADDRESS_PATTERN.search(b"202.114.41.1")
