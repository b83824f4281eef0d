"""Stable reason codes for every way one monitor of a campaign can end failed, each with its sentence.

Like the trust reasons (``domain.trust.reasons``), the codes are a public contract: the journal records
them as they are (``state-changed`` ``reason``), the exports, the TUI and scripts match on them, so a
code is never renamed or reused. A front end shows ``explain(code)`` where a person reads the reason.

Where they come from: a transport (``TransportError.reason``, mapped in its adapter), a monitor's steps
(``device_flow``), the package's applicability to the monitor (``domain.trust.reasons``), the device
profile's installer outcomes (``domain.profile.INSTALL_REASONS``) and the verdicts.
"""

from __future__ import annotations

from enum import StrEnum

from orchestrator.domain.trust.reasons import explain as explain_trust


class FailureReason(StrEnum):
    # the proof after the install
    BACKDOOR_STILL_PRESENT = "backdoor-still-present"
    VERIFICATION_INCONCLUSIVE = "verification-inconclusive"
    SILENT_ROLLBACK = "silent-rollback"
    UNEXPECTED_VERSION = "unexpected-version"
    REBOOT_NOT_OBSERVED = "reboot-not-observed"
    REBOOT_TIMEOUT = "reboot-timeout"
    # the upload and the install
    HASH_MISMATCH = "hash-mismatch"
    UPLOAD_INCOMPLETE = "upload-incomplete"
    SFTP_FAILED = "sftp-failed"
    DISK_FULL = "disk-full"
    INSTALLER_FAILED = "installer-failed"
    PACKAGE_UNREADABLE = "package-unreadable"
    PACKAGE_MISSING = "package-missing"
    LEASE_FAILED = "lease-failed"
    LEASE_LOST = "lease-lost"
    # reaching the monitor
    UNREACHABLE = "unreachable"
    CONNECTION_REFUSED = "connection-refused"
    TIMEOUT = "timeout"
    CONNECTION_DROPPED = "connection-dropped"
    CONNECTION_FAILED = "connection-failed"
    RECONNECT_TIMEOUT = "reconnect-timeout"
    HOST_KEY_MISMATCH = "host-key-mismatch"
    HOST_KEY_UNKNOWN = "host-key-unknown"
    KNOWN_HOSTS_UNREADABLE = "known-hosts-unreadable"
    AUTH_REFUSED = "auth-refused"
    CREDENTIAL_UNUSABLE = "credential-unusable"
    CREDENTIAL_MISSING = "credential-missing"
    INDICATOR_ADDRESS = "indicator-address"
    # the delivery path itself
    NO_TRANSPORT = "no-transport"
    NO_SERVICE_ACCESS = "no-service-access"
    RUNNER_FAILED = "runner-failed"
    ANSIBLE_NO_RESULT = "ansible-no-result"
    UPLOAD_FAILED = "upload-failed"
    RECONNECT_FAILED = "reconnect-failed"
    COMMAND_FAILED = "command-failed"
    WORK_ORDER_UNWRITABLE = "work-order-unwritable"
    # the package does not apply to this monitor (the trust reasons' words)
    WRONG_MODEL = "wrong-model"
    NOT_UPGRADABLE_FROM = "not-upgradable-from"


EXPLANATIONS: dict[FailureReason, str] = {
    FailureReason.BACKDOOR_STILL_PRESENT: "the verification found the backdoor still there after the install",
    FailureReason.VERIFICATION_INCONCLUSIVE: "the verification could not prove every CVE fixed (see its "
                                             "evidence): not counted as patched",
    FailureReason.SILENT_ROLLBACK: "the monitor came back on its old firmware: the install did not take",
    FailureReason.UNEXPECTED_VERSION: "the monitor came back on a version that is neither the old nor the "
                                      "package's",
    FailureReason.REBOOT_NOT_OBSERVED: "no new boot was seen within the reboot timeout, so the new system "
                                       "cannot be shown to run",
    FailureReason.REBOOT_TIMEOUT: "the monitor did not come back after its reboot within the timeout",
    FailureReason.HASH_MISMATCH: "the uploaded file's hash on the monitor differs from the manifest's, "
                                 "twice",
    FailureReason.UPLOAD_INCOMPLETE: "the upload ended short of the package's size",
    FailureReason.SFTP_FAILED: "the monitor's file transfer service did not open",
    FailureReason.DISK_FULL: "no space left on the monitor for the package or its install",
    FailureReason.INSTALLER_FAILED: "the monitor's installer reported a failure (its message is journalled)",
    FailureReason.PACKAGE_UNREADABLE: "the package file could not be read on this machine for the upload",
    FailureReason.PACKAGE_MISSING: "the package was not where the install expected it on the monitor",
    FailureReason.LEASE_FAILED: "the monitor's lease file could not be written or read",
    FailureReason.LEASE_LOST: "another campaign took the monitor's lease between two steps",
    FailureReason.UNREACHABLE: "the monitor did not answer on its service port",
    FailureReason.CONNECTION_REFUSED: "the monitor refused the service connection",
    FailureReason.TIMEOUT: "the monitor stopped answering within the command timeout",
    FailureReason.CONNECTION_DROPPED: "the service connection dropped and could not be re-established",
    FailureReason.CONNECTION_FAILED: "the service connection failed",
    FailureReason.RECONNECT_TIMEOUT: "the monitor did not accept a new connection within the timeout",
    FailureReason.HOST_KEY_MISMATCH: "the monitor's host key differs from the pinned one: refused (a "
                                     "replaced unit or someone in between)",
    FailureReason.HOST_KEY_UNKNOWN: "no host key is pinned for the monitor: enrol it first",
    FailureReason.KNOWN_HOSTS_UNREADABLE: "the known_hosts file cannot be read",
    FailureReason.AUTH_REFUSED: "the monitor refused the service login",
    FailureReason.CREDENTIAL_UNUSABLE: "the inventory's key file for the monitor cannot be used",
    FailureReason.CREDENTIAL_MISSING: "the inventory gives no credential for the monitor",
    FailureReason.INDICATOR_ADDRESS: "the monitor's address is in the attacker's network 202.114.4.0/24: "
                                     "never connected to",
    FailureReason.NO_TRANSPORT: "no transport for the monitor's delivery path (ansible-runner missing?)",
    FailureReason.NO_SERVICE_ACCESS: "a hands-on unit has no service access",
    FailureReason.RUNNER_FAILED: "ansible-runner could not start or follow the run",
    FailureReason.ANSIBLE_NO_RESULT: "the Ansible run gave no result for the monitor",
    FailureReason.UPLOAD_FAILED: "the Ansible upload task failed (its message is journalled)",
    FailureReason.RECONNECT_FAILED: "the Ansible reconnect task failed (its message is journalled)",
    FailureReason.COMMAND_FAILED: "Ansible could not run a command on the monitor",
    FailureReason.WORK_ORDER_UNWRITABLE: "the hands-on work order could not be written",
    FailureReason.WRONG_MODEL: explain_trust("wrong-model"),
    FailureReason.NOT_UPGRADABLE_FROM: explain_trust("not-upgradable-from"),
}


def explain(reason: str) -> str:
    """The plain sentence for a failure reason code (the code itself when it is not one of ours)."""
    try:
        return EXPLANATIONS[FailureReason(reason)]
    except ValueError:
        return reason
