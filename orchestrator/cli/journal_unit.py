"""One monitor of a campaign, from its journal: what ``confirm`` and ``bench`` (CLI and TUI) start from.

``campaign_unit`` opens the journal as a writer (verified first: chain and anchors), finds the campaign
(the one asked for, or the newest patch campaign) and the monitor's status in it; a monitor the campaign
does not hold is refused (``unknown-device``, exit 2). The caller judges the state: each command has
its own rule (awaiting a technician, a trigger request, a bench session).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.domain.status import DeviceStatus, project
from orchestrator.errors import UsageError


@contextmanager
def campaign_unit(args: argparse.Namespace, device: str) -> Iterator[tuple[SqliteJournal, str, DeviceStatus]]:
    """(journal, campaign, the monitor's status in it), the journal open for the block."""
    from orchestrator.cli.campaign import _campaign_of, _open_existing

    with _open_existing(args) as journal:
        campaign = _campaign_of(journal, args.campaign)
        status = project(journal.records(campaign), campaign).devices.get(device)
        if status is None:
            raise UsageError(f"{device} is not in campaign {campaign}", reason="unknown-device")
        yield journal, campaign, status
