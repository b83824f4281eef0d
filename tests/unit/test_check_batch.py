"""One round trip for many read-only checks: the script's framing and the parser that cuts it back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.domain import check_batch
from orchestrator.domain.check_batch import CheckOutput, batch_script, split_batch
from orchestrator.domain.checks import CATALOGUE
from orchestrator.domain.indicators import MOUNT_STRING

NONCE = "5f0c2a9e41b7d3c8a6e2f1b0c9d8e7f6"
DEVICE_CHECKS = [name for name, spec in CATALOGUE.items() if spec.command]


def framed(nonce: str, name: str, out: CheckOutput) -> bytes:
    """What the BusyBox script prints for one check (module doc of check_batch)."""
    return (f"\n{nonce} begin {name}\n".encode() + out.stdout + f"\n{nonce} stderr {name}\n".encode()
            + out.stderr + f" {out.exit_status}\n{nonce} end {name}\n".encode())


def test_each_check_comes_back_with_its_own_stdout_stderr_and_exit_status() -> None:
    outs = {"firmware-version": CheckOutput(b"CMS7.820.120.01/0.93(0.95)\n", b"", 0),
            "monitor-mount-string": CheckOutput(MOUNT_STRING + b"\n", b"", 0),
            "update-mount-string": CheckOutput(b"", b"grep: /opt/cms/bin/update: No such file\n", 2)}
    output = b"".join(framed(NONCE, name, out) for name, out in outs.items())
    assert split_batch(output, NONCE, list(outs)) == outs


@settings(max_examples=200)
@given(st.lists(st.tuples(st.binary(max_size=300),
                          st.binary(max_size=100).filter(lambda b: b"\x00" not in b),
                          st.integers(0, 255)), min_size=1, max_size=len(DEVICE_CHECKS)))
def test_any_output_round_trips_exactly(parts: list[tuple[bytes, bytes, int]]) -> None:
    names = DEVICE_CHECKS[:len(parts)]
    outs = {name: CheckOutput(*part) for name, part in zip(names, parts, strict=True)}
    output = b"".join(framed(NONCE, name, out) for name, out in outs.items())
    assert split_batch(output, NONCE, names) == outs


def test_a_delimiter_forged_without_the_nonce_is_only_output() -> None:
    forged = (b"CMS-fixed-1.0\n" + framed("0" * 32, "firmware-version", CheckOutput(b"", b"", 0))
              + b"\nbegin monitor-mount-string\n stderr firmware-version\n 0\n end firmware-version\n")
    outs = {"firmware-version": CheckOutput(forged, b"", 0),
            "monitor-mount-string": CheckOutput(MOUNT_STRING + b"\n", b"", 0)}
    output = b"".join(framed(NONCE, name, out) for name, out in outs.items())
    assert split_batch(output, NONCE, list(outs)) == outs


def test_a_section_cut_short_is_absent_not_empty() -> None:
    first = framed(NONCE, "nfs-mount", CheckOutput(b"rootfs / rootfs rw 0 0\n", b"", 0))
    cut = framed(NONCE, "indicator-route", CheckOutput(b"Iface\n", b"", 0))[:-20]
    assert set(split_batch(first + cut, NONCE, ["nfs-mount", "indicator-route"])) == {"nfs-mount"}


def test_a_section_without_an_exit_status_is_absent() -> None:
    bad = framed(NONCE, "nfs-mount", CheckOutput(b"x\n", b"", 0)).replace(b" 0\n" + NONCE.encode(),
                                                                          b" ?\n" + NONCE.encode())
    assert split_batch(bad, NONCE, ["nfs-mount"]) == {}


def test_the_script_runs_each_checks_own_command_in_order() -> None:
    names = ["eth0-state", "binary-hashes", "patient-status"]
    script = batch_script(names, NONCE)
    positions = [script.index(CATALOGUE[name].command or "") for name in names]
    assert positions == sorted(positions)
    assert script.count(NONCE) == 3 * len(names)


@pytest.mark.parametrize("nonce", ["", "short", "ABCDEF0123456789", "0123456789abcdef; reboot"])
def test_a_nonce_that_is_not_random_hex_is_refused(nonce: str) -> None:
    with pytest.raises(ValueError):
        batch_script(["eth0-state"], nonce)


@pytest.mark.parametrize("names", [["udp-probe"], ["no-such-check"], ["eth0-state", "eth0-state"]])
def test_only_distinct_device_checks_can_be_batched(names: list[str]) -> None:
    with pytest.raises(ValueError):
        check_batch.batch_script(names, NONCE)
