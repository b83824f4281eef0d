"""Sessions and transports raise only cmspatch errors (``ports``): an operating-system error on our side
of a delivery path is a ``PermanentTransportError`` with its reason code, so the engine fails that one
monitor by name and verification never needs to catch ``OSError``."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.adapters.ssh import SshSession, SshTransport
from orchestrator.errors import PermanentTransportError
from tests.unit import engine_rules_rig as rig
from tests.unit.engine_rules_rig import Worlds, device, states

package = pytest.fixture(scope="module")(rig.package_fixture)
world = pytest.fixture(rig.world_fixture)


def test_an_upload_of_a_package_that_is_gone_is_refused_by_reason(tmp_path: Path) -> None:
    session = SshSession(SshTransport(), device(1))
    with pytest.raises(PermanentTransportError) as refused:
        session.put(tmp_path / "gone.tar", "/data/upgrade/gone.tar")
    assert refused.value.reason == "package-unreadable" and refused.value.host == "bed01"


def test_a_work_order_that_cannot_be_written_fails_its_unit_by_reason(world: Worlds) -> None:
    rules = world(device(1, manual=True))
    (rules.directory / "work-orders").write_text("a file where the orders' directory should be\n")
    engine, _ = rules.run()
    assert states(engine)["bed01"] == ("failed", "work-order-unwritable")
