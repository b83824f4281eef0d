"""Package trust, the pure part: envelope, manifest, policy, signatures, threshold, scan, anti-rollback.

Everything here takes bytes and values and returns values or raises ``TrustError`` with a stable
``reason`` (see ``reasons.py``). Reading files, walking archives and writing the anti-rollback state is
done by ``orchestrator.adapters.package_verify`` and its helpers.
"""

from __future__ import annotations

from orchestrator.domain.trust.reasons import EXPLANATIONS, Reason, explain
from orchestrator.domain.trust.verified import VerifiedPackage

__all__ = ["EXPLANATIONS", "Reason", "VerifiedPackage", "explain"]
