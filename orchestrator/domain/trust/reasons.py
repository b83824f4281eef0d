"""Stable reason codes for every way a package, manifest or policy can be refused.

The codes are part of the public contract: the journal, the exports, the TUI and scripts match on them,
so a code is never renamed or reused for another rule. Each has one plain sentence that says what the
rule protects against; the verify report adds the particulars (which key, which member, which hash).
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # inputs that cannot be read as what they claim to be
    POLICY_INVALID = "policy-invalid"
    MANIFEST_INVALID = "manifest-invalid"
    KEY_INVALID = "key-invalid"
    KEY_TOO_WEAK = "key-too-weak"
    STATE_INVALID = "state-invalid"
    # signatures and the threshold
    SIGNATURE_INVALID = "signature-invalid"
    UNKNOWN_KEY = "unknown-key"
    KEY_REVOKED = "key-revoked"
    BELOW_THRESHOLD = "below-threshold"
    # what the manifest says, against the time, the device and what was accepted before
    MANIFEST_EXPIRED = "manifest-expired"
    WRONG_MODEL = "wrong-model"
    NOT_UPGRADABLE_FROM = "not-upgradable-from"
    ALREADY_INSTALLED = "already-installed"
    ROLLBACK = "rollback"
    RELEASE_REUSED = "release-reused"
    # the package bytes against the manifest
    PACKAGE_MISMATCH = "package-mismatch"
    ARTIFACT_TAMPERED = "artifact-tampered"
    ARTIFACT_TRUNCATED = "artifact-truncated"
    ARTIFACT_OVERSIZED = "artifact-oversized"
    # what is inside the package
    MEMBER_ABSOLUTE_PATH = "member-absolute-path"
    MEMBER_PATH_TRAVERSAL = "member-path-traversal"
    MEMBER_LINK = "member-link"
    MEMBER_DEVICE = "member-device"
    ARCHIVE_CORRUPT = "archive-corrupt"
    BACKDOOR_PRESENT = "backdoor-present"
    UNINSPECTABLE = "uninspectable"
    # how far reading the package would expand it (decompression bombs; see trust.limits)
    EXPANDED_TOO_LARGE = "expanded-too-large"
    EXPANSION_RATIO_TOO_HIGH = "expansion-ratio-too-high"
    NESTING_TOO_DEEP = "nesting-too-deep"
    TOO_MANY_MEMBERS = "too-many-members"


EXPLANATIONS: dict[Reason, str] = {
    Reason.POLICY_INVALID: "the trust policy file cannot be read as a policy",
    Reason.MANIFEST_INVALID: "the manifest cannot be read as a signed cmspatch manifest",
    Reason.KEY_INVALID: "a key cannot be read, or is of an unsupported kind",
    Reason.KEY_TOO_WEAK: "a key is too weak to be trusted (RSA needs at least 3072 bits)",
    Reason.STATE_INVALID: "the anti-rollback state file is unreadable; it is not silently reset",
    Reason.SIGNATURE_INVALID: "a signature does not verify over the manifest's bytes (edited after signing?)",
    Reason.UNKNOWN_KEY: "the manifest is signed by a key the trust policy does not name",
    Reason.KEY_REVOKED: "the manifest relies on a key that has been revoked",
    Reason.BELOW_THRESHOLD: "not enough distinct trusted keys signed the manifest",
    Reason.MANIFEST_EXPIRED: "the manifest has expired; it must be attested again",
    Reason.WRONG_MODEL: "the package is not approved for this monitor model",
    Reason.NOT_UPGRADABLE_FROM: "the package does not upgrade from the firmware installed on the monitor",
    Reason.ALREADY_INSTALLED: "the monitor already runs the version this package installs",
    Reason.ROLLBACK: "an older release than one already accepted: a rollback to a superseded package",
    Reason.RELEASE_REUSED: "the release number of an accepted package is reused for different content",
    Reason.PACKAGE_MISMATCH: "the manifest describes another package (manifests and packages mixed up)",
    Reason.ARTIFACT_TAMPERED: "the package's SHA-256 differs from the one recorded when it was received",
    Reason.ARTIFACT_TRUNCATED: "the package is shorter than recorded: truncated in transit or on disk",
    Reason.ARTIFACT_OVERSIZED: "the package is larger than recorded: bytes were appended",
    Reason.MEMBER_ABSOLUTE_PATH: "an archive member has an absolute path and could overwrite system files",
    Reason.MEMBER_PATH_TRAVERSAL: "an archive member's path climbs out of the install directory ('..')",
    Reason.MEMBER_LINK: "an archive member is a symbolic or hard link",
    Reason.MEMBER_DEVICE: "an archive member is a device file or a FIFO",
    Reason.ARCHIVE_CORRUPT: "the package's archive cannot be read to the end",
    Reason.BACKDOOR_PRESENT: "the package still carries the backdoor (mount string or 202.114.4.x address)",
    Reason.UNINSPECTABLE: "part of the package could not be inspected for the backdoor",
    Reason.EXPANDED_TOO_LARGE: "the package expands to more than its size allows (a decompression bomb?)",
    Reason.EXPANSION_RATIO_TOO_HIGH: "a compressed stream in the package expands far more than firmware does",
    Reason.NESTING_TOO_DEEP: "the package nests archives or compression deeper than the limit",
    Reason.TOO_MANY_MEMBERS: "the package's archives hold more members than the limit",
}


def explain(reason: str) -> str:
    """The plain sentence for a reason code (the code itself when it is not one of ours)."""
    try:
        return EXPLANATIONS[Reason(reason)]
    except ValueError:
        return reason
