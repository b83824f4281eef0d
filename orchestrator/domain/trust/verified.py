"""``VerifiedPackage``: the only thing the engine needs from package trust, and proof it was checked.

It exists only after every rule passed (``VerificationReport.require()`` builds it), so code that holds
one never has to ask again whether the package is trusted. ``applies_to`` is the per-device question the
engine asks before it moves a byte: is this monitor's model approved, and does the package upgrade from
what it runs? Firmware strings have no trustworthy ordering, so "newer" is expressed by the manifest's
``from_versions`` (exact strings or ``fnmatch`` patterns) and by refusing the version already installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from orchestrator.domain.trust.manifest import format_time
from orchestrator.domain.trust.reasons import Reason


@dataclass(frozen=True)
class VerifiedPackage:
    package: Path
    package_name: str
    sha256: str
    size: int
    manifest_sha256: str  # SHA-256 of the signed payload bytes (unchanged when signatures are added)
    target_version: str
    models: tuple[str, ...]
    from_versions: tuple[str, ...]
    release: int
    cves: tuple[str, ...]
    expires: datetime
    signer_keyids: tuple[str, ...]  # keys that counted towards the threshold
    signer_roles: tuple[str, ...]  # their roles, in the same order
    rule: str = ""  # the threshold rule that was met
    uninspected: tuple[str, ...] = ()  # parts accepted uninspected (--accept-uninspectable), for the evidence
    signer_owners: tuple[str, ...] = ()  # the person or team each counted key belongs to (trust policy owner)

    def signers(self) -> list[tuple[str, str, str]]:
        """(key id, role, owner) of each counted signature; owner "" where the policy names nobody."""
        owners = self.signer_owners + ("",) * (len(self.signer_keyids) - len(self.signer_owners))
        return list(zip(self.signer_keyids, self.signer_roles, owners, strict=True))

    def applies_to(self, model: str, firmware: str | None) -> str | None:
        """None when this package may be installed on a ``model`` monitor running ``firmware``, else
        a reason code. ``firmware=None`` (not read yet) checks the model only."""
        if model not in self.models:
            return Reason.WRONG_MODEL.value
        if firmware is None:
            return None
        if firmware.strip() == self.target_version:
            return Reason.ALREADY_INSTALLED.value
        if not any(fnmatchcase(firmware.strip(), pattern) for pattern in self.from_versions):
            return Reason.NOT_UPGRADABLE_FROM.value
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "package": str(self.package),
            "package_name": self.package_name,
            "sha256": self.sha256,
            "size": self.size,
            "manifest_sha256": self.manifest_sha256,
            "target_version": self.target_version,
            "models": list(self.models),
            "from_versions": list(self.from_versions),
            "release": self.release,
            "cves": list(self.cves),
            "expires": format_time(self.expires),
            "signers": [{"keyid": k, "role": r, "owner": o} for k, r, o in self.signers()],
            "rule": self.rule,
            "uninspected": list(self.uninspected),
        }
