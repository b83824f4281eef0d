"""Indicators of the Contec backdoor (BRIEF.md section 2) and the loopback mapping used to observe them.

Product code only ever *listens* on an indicator address. In emulation and in every test the indicator
network 202.114.4.0/24 is mapped onto a loopback /24 (by default 127.114.4.0/24) so that no packet
leaves the machine; ``IndicatorMap`` refuses any mapping whose target is not loopback.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum

from orchestrator.errors import CmspatchError


class Cve(StrEnum):
    """The four CVEs of CISA ICSMA-25-030-01."""

    UDP_RCE = "CVE-2024-12248"  # out-of-bounds write from UDP requests
    MONITOR_NFS = "CVE-2025-0626"  # hidden NFS mount in `monitor` (menu update)
    PHI_LEAK = "CVE-2025-0683"  # plain-text patient data to hard-coded addresses
    UPDATE_NFS = "CVE-2025-1204"  # hidden NFS mount in `update` (C at boot)


ALL_CVES: tuple[Cve, ...] = (Cve.UDP_RCE, Cve.MONITOR_NFS, Cve.PHI_LEAK, Cve.UPDATE_NFS)

MODELS: tuple[str, ...] = ("CMS6000", "CMS6500", "CMS7000", "CMS8000", "CMS9000", "MN-120")

INDICATOR_NETWORK = ipaddress.IPv4Network("202.114.4.0/24")
CMS_SERVER = ipaddress.IPv4Address("202.114.4.119")  # TCP 515-520, NFS export /pm
HL7_SERVER = ipaddress.IPv4Address("202.114.4.120")  # TCP 511
CMS_TCP_PORTS: tuple[int, ...] = (515, 516, 517, 518, 519, 520)
HL7_TCP_PORT = 511
PORTMAPPER_PORT = 111
NFS_PORT = 2049
SINKHOLE_TCP_PORTS: tuple[int, ...] = (HL7_TCP_PORT, *CMS_TCP_PORTS, PORTMAPPER_PORT, NFS_PORT)
SINKHOLE_UDP_PORTS: tuple[int, ...] = (PORTMAPPER_PORT, NFS_PORT)
NFS_EXPORT = "/pm"

# The public YARA rule (mgreen27/100daysofyara, MAL_Contec_CMS8000_Backdoor): ELF < 4 MB with this string.
MOUNT_PATTERN: re.Pattern[bytes] = re.compile(rb"mount -o nolock -t nfs \d{1,3}(\.\d{1,3}){3}:\/pm \/mnt")
MOUNT_STRING = b"mount -o nolock -t nfs 202.114.4.119:/pm /mnt"
# Any dotted address in 202.114.4.0/24, as text inside a binary or a script.
INDICATOR_ADDRESS_PATTERN: re.Pattern[bytes] = re.compile(rb"(?<![\d.])202\.114\.4\.(\d{1,3})(?![\d])")
KNOWN_VULNERABLE_MONITOR_SHA256 = "4e42d3b131bd10d8f192d2d15c23bd68164c1bf3daf3c33803b8e81cb4d896ad"

# CMS telemetry block types (scarito/cms protocol notes).
BLOCK_PATIENT_RECORD = 0x3E
BLOCK_VITALS = 0x46
BLOCK_FRAME_END = 0x47


class UnsafeMapping(CmspatchError):
    reason = "unsafe-mapping"


@dataclass(frozen=True)
class IndicatorMap:
    """Maps the indicator /24 onto a loopback /24, host byte for host byte.

    ``IndicatorMap("127.114.4")`` maps 202.114.4.119 to 127.114.4.119. Tests that run side by side pick
    different prefixes (127.114.5, ...) so their sinkholes never collide on the fixed ports.
    """

    loopback_prefix: str = "127.114.4"

    def __post_init__(self) -> None:
        try:
            net = ipaddress.IPv4Network(f"{self.loopback_prefix}.0/24")
        except ValueError as exc:
            raise UnsafeMapping(f"not a /24 prefix: {self.loopback_prefix!r}") from exc
        if not net.subnet_of(ipaddress.IPv4Network("127.0.0.0/8")):
            raise UnsafeMapping(
                f"indicator addresses may only be mapped onto loopback, not {net}: "
                "cmspatch never sends a packet towards the indicator network"
            )

    def map(self, address: str | ipaddress.IPv4Address) -> str:
        """Return the loopback stand-in for an indicator address (refuses anything else)."""
        addr = ipaddress.IPv4Address(str(address))
        if addr not in INDICATOR_NETWORK:
            raise UnsafeMapping(f"{addr} is not an indicator address")
        return f"{self.loopback_prefix}.{int(addr) & 0xFF}"

    def unmap(self, address: str) -> str | None:
        """Return the indicator address a loopback stand-in represents, or None if it is not one."""
        addr = ipaddress.IPv4Address(address)
        if ipaddress.IPv4Network(f"{self.loopback_prefix}.0/24").__contains__(addr):
            return f"202.114.4.{int(addr) & 0xFF}"
        return None

    @property
    def cms_server(self) -> str:
        return self.map(CMS_SERVER)

    @property
    def hl7_server(self) -> str:
        return self.map(HL7_SERVER)


def is_indicator(address: str) -> bool:
    try:
        return ipaddress.IPv4Address(address) in INDICATOR_NETWORK
    except ValueError:
        return False
