"""The reboot proof (domain.boot): only another boot identity is a reboot; unknown never is."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.domain.boot import (
    BootIdentity,
    BootOutcome,
    decide_reboot,
    identity_command,
    parse_identity,
)

OLD_ID = "3f1c2a9e-0b7d-4c51-9a0e-6d2b8f4e1a77"
NEW_ID = "9a0e6d2b-8f4e-41a7-83f1-c2a9e0b7d4c5"
MARKER = "0123456789abcdef"


def _out(boot_id: str = "", uptime: str = "", marker: str = "") -> str:
    return f"boot_id={boot_id}\nuptime={uptime}\nmarker={marker}\n"


def test_another_boot_id_is_a_reboot() -> None:
    before = parse_identity(_out(OLD_ID, "812.40", MARKER))
    decision = decide_reboot(before, parse_identity(_out(NEW_ID, "3.10")), MARKER)
    assert (decision.outcome, decision.reason) == (BootOutcome.REBOOTED, "boot-id-changed")
    assert decision.rebooted


def test_the_same_boot_id_is_the_old_system_still_running() -> None:
    # A monitor that kept its session and answers again after `reboot` has not rebooted yet.
    before = parse_identity(_out(OLD_ID, "812.40", MARKER))
    decision = decide_reboot(before, parse_identity(_out(OLD_ID, "834.00", MARKER)), MARKER)
    assert (decision.outcome, decision.reason) == (BootOutcome.SAME_BOOT, "boot-id-unchanged")
    assert not decision.rebooted


def test_the_boot_id_wins_over_a_marker_left_in_a_tmp_that_is_not_a_tmpfs() -> None:
    before = parse_identity(_out(OLD_ID, "812.40", MARKER))
    assert decide_reboot(before, parse_identity(_out(NEW_ID, "2.0", MARKER)), MARKER).rebooted


def test_without_boot_id_the_marker_gone_and_the_uptime_reset_is_a_reboot() -> None:
    before = parse_identity(_out(uptime="812.40", marker=MARKER))
    decision = decide_reboot(before, parse_identity(_out(uptime="4.02")), MARKER)
    assert (decision.outcome, decision.reason) == (BootOutcome.REBOOTED, "uptime-reset")


def test_without_boot_id_a_marker_still_there_is_the_same_boot() -> None:
    before = parse_identity(_out(uptime="812.40", marker=MARKER))
    decision = decide_reboot(before, parse_identity(_out(uptime="4.02", marker=MARKER)), MARKER)
    assert (decision.outcome, decision.reason) == (BootOutcome.SAME_BOOT, "marker-present")


def test_a_marker_gone_while_the_uptime_kept_counting_proves_nothing() -> None:
    # Someone emptied /tmp; the system never restarted.
    before = parse_identity(_out(uptime="812.40", marker=MARKER))
    decision = decide_reboot(before, parse_identity(_out(uptime="840.00")), MARKER)
    assert (decision.outcome, decision.reason) == (BootOutcome.UNPROVEN, "uptime-not-reset")
    assert not decision.rebooted


def test_a_marker_that_could_not_be_written_proves_nothing() -> None:
    before = parse_identity(_out(uptime="812.40"))
    decision = decide_reboot(before, parse_identity(_out(uptime="1.0")), MARKER)
    assert (decision.outcome, decision.reason) == (BootOutcome.UNPROVEN, "marker-not-written")


@pytest.mark.parametrize(("before", "after", "reason"), [
    (None, _out(NEW_ID), "no-identity-before"),
    (_out(), _out(NEW_ID), "no-identity-before"),
    (_out(OLD_ID, marker=MARKER), None, "no-identity-after"),
    (_out(OLD_ID, marker=MARKER), "", "no-identity-after"),
    (_out(OLD_ID, marker=MARKER), "sh: cat: not found\n", "no-identity-after"),
])
def test_an_unreadable_identity_is_never_a_reboot(before: str | None, after: str | None, reason: str) -> None:
    decision = decide_reboot(None if before is None else parse_identity(before),
                             None if after is None else parse_identity(after), MARKER)
    assert (decision.outcome, decision.reason) == (BootOutcome.UNPROVEN, reason)


def test_a_key_given_twice_reads_as_unreadable() -> None:
    identity = parse_identity(f"boot_id={OLD_ID}\nboot_id={NEW_ID}\nuptime=1.0\nuptime=2.0\n")
    assert identity == BootIdentity() and not identity.readable


@pytest.mark.parametrize("uptime", ["nan", "inf", "-3", "soon", ""])
def test_an_uptime_that_is_not_a_finite_count_of_seconds_is_unreadable(uptime: str) -> None:
    assert parse_identity(_out(uptime=uptime)).uptime is None


def test_the_identity_survives_the_journal() -> None:
    identity = parse_identity(_out(OLD_ID, "812.4", MARKER))
    assert BootIdentity.from_dict(identity.to_dict()) == identity
    assert BootIdentity.from_dict("not a record") is None


def test_the_command_writes_the_marker_before_reading_and_refuses_anything_but_hex() -> None:
    command = identity_command(MARKER)
    assert command.index(f"echo {MARKER} >") < command.index("boot_id")
    assert ">" not in identity_command().replace("2>/dev/null", "")  # reading writes nothing
    with pytest.raises(ValueError):
        identity_command("x; reboot")


@given(st.text(max_size=300))
def test_the_same_reading_twice_is_never_a_reboot(text: str) -> None:
    identity = parse_identity(text)  # any output parses without raising
    assert not decide_reboot(identity, identity, MARKER).rebooted
