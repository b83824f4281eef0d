"""What an emulated monitor is: models, version strings, serial numbers, sites and wards.

The vulnerable version strings are the ones CISA names (BRIEF.md section 1). No public source gives the
version strings of Contec's two fixes, so the January 2025 ("insufficient": eth0 disabled, backdoor still
in the binaries) and July 2025 ("fixed": network functions removed) builds are FICTIONAL constants chosen
to look like the vendor's scheme; every test and demo package refers to them through these names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from orchestrator.domain.indicators import MODELS


class FirmwareState(StrEnum):
    VULNERABLE = "vulnerable"
    INSUFFICIENT = "insufficient"  # January 2025 style: eth0 disabled, hidden mount still present
    FIXED = "fixed"  # July 2025 style: no mount string, no indicator address, no UDP listener


# Named by CISA ICSMA-25-030-01 as affected.
VULNERABLE_VERSIONS: tuple[str, ...] = (
    "CMS7.820.075.08/0.74(0.75)",
    "CMS7.820.120.01/0.93(0.95)",
    "smart3250-2.6.27-wlan2.1.7.cramfs",
)
# Fictional (see module docstring).
INSUFFICIENT_VERSION = "CMS7.820.125.02/0.96(0.97)"  # "January 2025" build
FIXED_VERSION = "CMS7.820.200.05/1.10(1.10)"  # "July 2025" build

# The vulnerable build each model ships with (the MN-120 relabel runs the "smart3250" image).
DEFAULT_VULNERABLE_VERSION: dict[str, str] = {
    "CMS6000": "CMS7.820.075.08/0.74(0.75)",
    "CMS6500": "CMS7.820.075.08/0.74(0.75)",
    "CMS7000": "CMS7.820.120.01/0.93(0.95)",
    "CMS8000": "CMS7.820.075.08/0.74(0.75)",
    "CMS9000": "CMS7.820.120.01/0.93(0.95)",
    "MN-120": "smart3250-2.6.27-wlan2.1.7.cramfs",
}

SERIAL_PREFIX: dict[str, str] = {
    "CMS6000": "CMS6K",
    "CMS6500": "CMS65",
    "CMS7000": "CMS7K",
    "CMS8000": "CMS8K",
    "CMS9000": "CMS9K",
    "MN-120": "MN120",
}

# Default fleet composition (weights): mostly CMS8000, a few of every other model.
DEFAULT_MIX: dict[str, int] = {
    "CMS8000": 5, "CMS6000": 1, "CMS6500": 1, "CMS7000": 1, "CMS9000": 1, "MN-120": 1,
}

# The real CVE-2024-12248 port is not published; the emulator listens on this one (documented choice).
UDP_SERVICE_PORT = 51000

# The legacy default service password (ICSMA-22-244-01 says default credentials exist; the actual value
# is not public, this one is fictional). Accepted only while the "default-password" fault is injected.
LEGACY_USER = "service"
LEGACY_PASSWORD = "cms8000"


@dataclass(frozen=True)
class Ward:
    site_group: str  # inventory group name, e.g. "site_north"
    site: str  # human name
    short: str  # host name prefix part, e.g. "north"
    ward_group: str  # e.g. "north_icu"
    ward: str  # e.g. "ICU"
    ward_short: str  # e.g. "icu"


def _ward(site_short: str, site: str, ward_short: str, ward: str) -> Ward:
    return Ward(f"site_{site_short}", site, site_short, f"{site_short}_{ward_short.replace('-', '_')}",
                ward, ward_short)


# Interleaved across sites so that even a small fleet spans three sites.
WARDS: tuple[Ward, ...] = (
    _ward("north", "North General", "icu", "ICU"),
    _ward("south", "South Children's", "picu", "Paediatric ICU"),
    _ward("east", "East Community", "er", "Emergency"),
    _ward("north", "North General", "ccu", "Cardiac Care"),
    _ward("south", "South Children's", "nicu", "Neonatal ICU"),
    _ward("east", "East Community", "med", "Medical Ward"),
    _ward("north", "North General", "er", "Emergency"),
    _ward("east", "East Community", "step", "Step-down"),
)

assert set(DEFAULT_VULNERABLE_VERSION) == set(MODELS) == set(SERIAL_PREFIX)


def serial_for(model: str, index: int) -> str:
    """Deterministic serial: model prefix, a production year/month and a sequence number."""
    yymm = 2301 + (index * 7) % 12
    return f"{SERIAL_PREFIX[model]}-{yymm}-{17 + index * 13:05d}"


def version_for(model: str, state: FirmwareState) -> str:
    if state is FirmwareState.FIXED:
        return FIXED_VERSION
    if state is FirmwareState.INSUFFICIENT:
        return INSUFFICIENT_VERSION
    return DEFAULT_VULNERABLE_VERSION[model]
