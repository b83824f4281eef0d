"""Typed device records: what the rest of cmspatch knows about one monitor.

Produced by ``inventory.load_inventory``; everything downstream (waves, engine, checks, exports, TUI)
takes these values and never re-reads the YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from orchestrator.domain.profile import DEFAULT_PROFILE


class DeliveryPath(StrEnum):
    SSH = "ssh"  # paramiko over the service SSH port
    ANSIBLE = "ansible"  # the same steps as playbooks, via ansible-runner
    MANUAL = "manual"  # hands-on USB work order, confirmed by a technician


@dataclass(frozen=True)
class CredentialRef:
    """Where the login secret lives. Never the secret itself: a key file path or the SSH agent."""

    key_file: str | None = None
    agent: bool = False

    def describe(self) -> str:
        return f"key file {self.key_file}" if self.key_file else "ssh-agent"


@dataclass(frozen=True)
class Device:
    name: str  # inventory host name, unique
    model: str  # one of indicators.MODELS
    serial: str
    site: str
    ward: str
    bed: str
    address: str
    port: int
    user: str
    credential: CredentialRef
    host_key: str | None  # pinned fingerprint "SHA256:..." (None only for manual units)
    delivery: DeliveryPath
    asset_tag: str | None = None
    firmware: str | None = None  # firmware the inventory believes is installed, if recorded
    groups: tuple[str, ...] = ()  # every inventory group the host belongs to (for --limit patterns)
    vars: dict[str, object] = field(default_factory=dict, compare=False, hash=False)
    source_line: int = 0  # line in the inventory file where the host is defined
    # The device profile (``domain.profile``): a shipped profile's name or a path, ``cmspatch_profile``.
    profile: str = DEFAULT_PROFILE
