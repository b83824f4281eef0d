"""The composition root: the one place that picks adapters and hands them to an engine.

The engine (``orchestrator.engine``) and a monitor's steps (``orchestrator.device_flow``) talk only
through ``orchestrator.ports``; which class stands behind each port is decided here, once, for every
front end that drives a campaign: ``cmspatch run``/``--resume``, the TUI, the demo and the benchmark,
including their transports and the sinkhole they watch the network with.
A second copy of this wiring is how front ends used to drift apart (one forgot the claims file, one
reached into another's private helper), so they call these functions instead of building engines.

Deliberately left out: reading the inventory, the package and the policy (each front end reports its
own input errors its own way) and any campaign rule (the domain's).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.adapters.clock import SYSTEM_CLOCK
from orchestrator.adapters.journal_claims import Claims
from orchestrator.adapters.journal_sqlite import SqliteJournal
from orchestrator.adapters.manual import ManualTransport, build_work_order
from orchestrator.adapters.package_reader import package_expectations
from orchestrator.adapters.profile_file import ProfileBook
from orchestrator.adapters.ssh import SshTransport
from orchestrator.domain.devices import DeliveryPath, Device
from orchestrator.domain.indicators import IndicatorMap
from orchestrator.domain.inventory import Inventory
from orchestrator.domain.profile import DeviceProfile
from orchestrator.domain.trust.verified import VerifiedPackage
from orchestrator.engine import Engine, EnginePorts
from orchestrator.ports import Clock, DeviceTransport, Journal, NetworkObserver
from orchestrator.verification import CampaignVerifier, DeviceVerification, verify_device


def transports(inventory: Inventory, work_orders: Path | None, stack: ExitStack
               ) -> dict[DeliveryPath, DeviceTransport]:
    """A transport per delivery path: paramiko for SSH, work orders written to ``work_orders`` for
    hands-on units, and ansible-runner when the inventory has Ansible monitors and ansible-runner is
    installed (its ControlPersist masters and control directory are closed with ``stack``)."""
    made: dict[DeliveryPath, DeviceTransport] = {
        DeliveryPath.SSH: ssh_transport(inventory),
        DeliveryPath.MANUAL: ManualTransport(work_orders),
    }
    if any(d.delivery is DeliveryPath.ANSIBLE for d in inventory.devices):
        try:
            made[DeliveryPath.ANSIBLE] = ansible_transport(inventory, stack)
        except ImportError:  # without ansible-runner those monitors fail with no-transport, by name
            pass
    return made


def ssh_transport(inventory: Inventory) -> DeviceTransport:
    """Paramiko sessions with the inventory's pinned host keys (its known_hosts)."""
    return SshTransport(known_hosts=inventory.known_hosts)


def ansible_transport(inventory: Inventory, stack: ExitStack, *, forks: int | None = None
                      ) -> DeviceTransport:
    """ansible-runner on the inventory's file (``forks``: its parallelism; default ansible's 50 here),
    closed with ``stack``; ImportError without ansible-runner."""
    from orchestrator.adapters.ansible import AnsibleTransport

    ansible = AnsibleTransport(inventory) if forks is None else AnsibleTransport(inventory, forks=forks)
    stack.callback(ansible.close)
    return ansible


def sinkhole(indicator_map: IndicatorMap, stack: ExitStack) -> NetworkObserver:
    """The live network observer: the sinkhole listening on the loopback stand-in ``indicator_map``
    of 202.114.4.0/24 (the only place cmspatch listens for it), stopped with ``stack``. Front ends start
    it once the engine holds its campaign (locks before listeners: a second run is refused as held, not
    as "address in use")."""
    from orchestrator.adapters.sinkhole import Sinkhole

    return stack.enter_context(Sinkhole(indicator_map))


class _WorkOrders:
    """``ports.WorkOrders`` by ``adapters.manual``: the order, written where the hands-on transport
    writes them (nowhere without one: the order is still journalled)."""

    def __init__(self, transport: DeviceTransport | None) -> None:
        self._transport = transport

    def issue(self, device: Device, *, campaign: str, package: VerifiedPackage, profile: DeviceProfile
              ) -> tuple[dict[str, Any], list[str]]:
        order = build_work_order(
            device, profile=profile, campaign=campaign, package_name=package.package_name,
            sha256=package.sha256, size=package.size, target_version=package.target_version,
            issued_at=datetime.now(UTC).isoformat(timespec="seconds"))
        files = self._transport.issue(order) if isinstance(self._transport, ManualTransport) else []
        return order.to_dict(), [str(p) for p in files]


Verify = Callable[..., DeviceVerification]  # verification.verify_device's signature


def engine_ports(inventory: Inventory, package: VerifiedPackage, journal: Journal,
                 transports: Mapping[DeliveryPath, DeviceTransport], verify: Verify = verify_device,
                 clock: Clock = SYSTEM_CLOCK) -> EnginePorts:
    """The adapters behind an engine's ports for this inventory, package and journal (``verify``: how
    one monitor is verified; tests give ``verify_device`` a scripted prober; ``clock``: the elapsed time
    verification and a monitor's steps wait by)."""
    on_disk = isinstance(journal, SqliteJournal) and str(journal.path) != ":memory:"
    return EnginePorts(
        verification=CampaignVerifier(inventory.devices, verify, clock),
        profiles=ProfileBook,
        clock=clock,
        claims=Claims(journal.path) if on_disk and isinstance(journal, SqliteJournal) else None,
        work_orders=_WorkOrders(transports.get(DeliveryPath.MANUAL)),
        package_files=lambda: package_expectations(package.package)[1],
    )


def new_engine(*, inventory: Inventory, package: VerifiedPackage, journal: Journal,
               transports: Mapping[DeliveryPath, DeviceTransport], verify: Verify = verify_device,
               timer: Clock = SYSTEM_CLOCK, **kwargs: Any) -> Engine:
    """A new campaign (``Engine``'s other arguments as given; ``timer``: ``engine_ports``' clock, not the
    engine's time of day)."""
    return Engine(inventory=inventory, package=package, journal=journal, transports=transports,
                  ports=engine_ports(inventory, package, journal, transports, verify, timer), **kwargs)


def resume_engine(*, inventory: Inventory, package: VerifiedPackage, journal: Journal,
                  transports: Mapping[DeliveryPath, DeviceTransport], verify: Verify = verify_device,
                  timer: Clock = SYSTEM_CLOCK, **kwargs: Any) -> Engine:
    """A campaign of the journal, continued (``Engine.resume``'s other arguments as given)."""
    return Engine.resume(inventory=inventory, package=package, journal=journal, transports=transports,
                         ports=engine_ports(inventory, package, journal, transports, verify, timer),
                         **kwargs)
