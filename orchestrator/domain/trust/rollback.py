"""Anti-rollback: once a release has been accepted for a model, an older one never is again.

The state is a small JSON document, per model: the highest release accepted and the SHA-256 of the
package accepted at that release. A lower release is a rollback (say, replaying January 2025's
"insufficient" package, validly signed at the time); the same release with other bytes is a reused
release number. The same release with the same bytes passes, so a package may be re-attested (a new
expiry) or verified again before each wave. Counters are per model because each model line has its own
package history; a manifest must pass for every model it names and, once accepted, is recorded for all.
The file I/O (atomic write, lock) is the adapter's; this module only reads and produces values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from orchestrator.domain.strict_load import STATE, StrictLoadError, load_json
from orchestrator.domain.trust.manifest import Manifest
from orchestrator.domain.trust.reasons import Reason
from orchestrator.errors import TrustError

STATE_VERSION = 1


@dataclass(frozen=True)
class Accepted:
    release: int
    sha256: str
    package: str = ""
    accepted_at: str = ""


@dataclass(frozen=True)
class RollbackState:
    models: dict[str, Accepted] = field(default_factory=dict)

    def check(self, manifest: Manifest, sha256: str) -> tuple[Reason, str] | None:
        for model in manifest.models:
            seen = self.models.get(model)
            if seen is None:
                continue
            if manifest.release < seen.release:
                return Reason.ROLLBACK, (f"release {manifest.release} is older than release {seen.release} "
                                         f"already accepted for {model} ({seen.package or seen.sha256[:12]})")
            if manifest.release == seen.release and sha256 != seen.sha256:
                return Reason.RELEASE_REUSED, (f"release {manifest.release} was accepted for {model} with "
                                               f"other content (SHA-256 {seen.sha256[:16]}...)")
        return None

    def record(self, manifest: Manifest, sha256: str, accepted_at: str) -> RollbackState:
        models = dict(self.models)
        for model in manifest.models:
            seen = models.get(model)
            if seen is None or manifest.release > seen.release:
                models[model] = Accepted(manifest.release, sha256, manifest.package, accepted_at)
        return replace(self, models=models)


def _refuse(message: str) -> TrustError:
    return TrustError(f"anti-rollback state: {message}", reason=Reason.STATE_INVALID)


def parse_state(data: bytes, filename: str = "the state") -> RollbackState:
    """Read the state through the strict loader (a model given twice is refused, not last-one-wins)."""
    try:
        doc = load_json(data, filename, STATE)
    except StrictLoadError as exc:
        raise _refuse(f"{exc.message} ({exc.reason})") from exc
    if not isinstance(doc, dict):
        raise _refuse(f"{filename}: must be a JSON object")
    if doc.get("version") != STATE_VERSION or not isinstance(doc.get("models"), dict):
        raise _refuse(f"expected version {STATE_VERSION} and a models object")
    models: dict[str, Accepted] = {}
    for model, raw in doc["models"].items():
        if not isinstance(raw, dict):
            raise _refuse(f"models.{model} must be an object")
        release, sha = raw.get("release"), raw.get("sha256")
        if isinstance(release, bool) or not isinstance(release, int) or not isinstance(sha, str):
            raise _refuse(f"models.{model} needs an integer release and a sha256")
        models[model] = Accepted(release, sha, str(raw.get("package", "")), str(raw.get("accepted_at", "")))
    return RollbackState(models=models)


def render_state(state: RollbackState) -> bytes:
    doc: dict[str, Any] = {
        "version": STATE_VERSION,
        "models": {m: {"release": a.release, "sha256": a.sha256, "package": a.package,
                       "accepted_at": a.accepted_at} for m, a in sorted(state.models.items())},
    }
    return (json.dumps(doc, indent=2) + "\n").encode("utf-8")
