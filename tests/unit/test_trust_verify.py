"""verify_package end to end on real files: one test per refusal rule, plus the accepted paths."""

from __future__ import annotations

import json
import os
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.adapters.demo_trust import make_demo_trust
from orchestrator.adapters.package_verify import verify_package
from orchestrator.domain.trust.manifest import Artifact
from orchestrator.domain.trust.signatures import generate_key
from orchestrator.errors import TrustError, UsageError
from tests.trust_helpers import (
    FIXED_VERSION,
    NOW,
    VULNERABLE_VERSION,
    TrustKit,
    package_members,
    tar_bytes,
    write_package,
)


@pytest.fixture
def kit(tmp_path: Path) -> TrustKit:
    return TrustKit.create(tmp_path)


def verify(kit: TrustKit, package: Path, manifest: Path, policy: Path | None = None, **kw: object):
    return verify_package(package, manifest, policy or kit.policy(), state=kit.directory / "state.json",
                          now=kw.pop("now", NOW), **kw)  # type: ignore[arg-type]


def test_demo_package_attested_by_two_hospital_keys_verifies(tmp_path: Path) -> None:
    package = write_package(tmp_path)
    demo = make_demo_trust(tmp_path / "work", package, models=("CMS8000",))
    report = verify_package(package, demo.manifest, demo.policy, model="CMS8000", state=demo.state)
    assert report.accepted, report.message
    verified = report.require()
    assert verified.target_version == FIXED_VERSION  # read from the package's VERSION member
    assert set(verified.signer_roles) == {"hospital-biomed", "hospital-security"}
    assert verified.rule == "hospital-two-person"
    assert oct(demo.keys["hospital-biomed"].stat().st_mode & 0o777) == "0o600"


def test_vendor_key_alone_is_enough(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package, signers=[kit.keys["vendor"]])
    report = verify(kit, package, manifest)
    assert report.accepted and report.rule == "vendor"


def test_tampered_artifact_is_refused(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package)
    data = bytearray(package.read_bytes())
    data[len(data) // 2] ^= 0x01
    package.write_bytes(bytes(data))
    report = verify(kit, package, manifest)
    assert report.reason == "artifact-tampered"
    assert report.actual_sha256 != report.artifact.sha256  # type: ignore[union-attr]


def test_truncated_artifact_is_refused(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package)
    package.write_bytes(package.read_bytes()[:-1])
    assert verify(kit, package, manifest).reason == "artifact-truncated"


def test_extended_artifact_is_refused(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package)
    with package.open("ab") as handle:
        handle.write(b"\x00")
    assert verify(kit, package, manifest).reason == "artifact-oversized"


def test_artifact_larger_than_declared_is_refused_without_being_read(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package)
    os.truncate(package, 64 << 30)  # a sparse 64 GiB file: hashing it would take minutes
    report = verify(kit, package, manifest)
    assert report.reason == "artifact-oversized" and report.actual_sha256 is None


def test_endless_stream_is_read_only_to_declared_size_plus_one(kit: TrustKit, tmp_path: Path) -> None:
    real = write_package(tmp_path, "real.tar.gz")
    size = real.stat().st_size
    fifo = tmp_path / "cms8000-fix.tar.gz"
    os.mkfifo(fifo)
    manifest = kit.manifest_for(real, artifact=Artifact(fifo.name, size, "0" * 64), name="m.json")
    written = 0

    def endless_writer() -> None:
        nonlocal written
        try:
            with open(fifo, "wb") as pipe:
                while written < (256 << 20):  # a safety net: the reader must stop long before
                    pipe.write(b"\x00" * 65536)
                    written += 65536
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=endless_writer, daemon=True)
    writer.start()
    report = verify(kit, fifo, manifest)
    writer.join(timeout=30)
    assert report.reason == "artifact-oversized"
    assert report.actual_size == size + 1
    assert written < (256 << 20)


def test_unknown_key_is_refused(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package, signers=[kit.keys["hospital-biomed"], generate_key("ed25519")])
    report = verify(kit, package, manifest)
    assert report.reason == "unknown-key"
    assert [c.counted for c in report.signers] == [True, False]


def test_revoked_key_is_refused(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package)
    policy = kit.policy(revoked=[kit.keys["hospital-security"].keyid])
    report = verify(kit, package, manifest, policy)
    assert report.reason == "key-revoked"


def test_below_threshold_is_refused(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package, signers=[kit.keys["hospital-security"]])
    report = verify(kit, package, manifest)
    assert report.reason == "below-threshold"
    assert any("hospital-biomed" in m for m in report.missing)


def test_expired_manifest_is_refused(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package, expires=NOW - timedelta(seconds=1))
    assert verify(kit, package, manifest).reason == "manifest-expired"


def test_rollback_to_an_older_release_is_refused(kit: TrustKit, tmp_path: Path) -> None:
    new = write_package(tmp_path, "fix-2.tar.gz", version="2")
    old = write_package(tmp_path, "fix-1.tar.gz", version="1")
    assert verify(kit, new, kit.manifest_for(new, release=2)).accepted
    report = verify(kit, old, kit.manifest_for(old, release=1))
    assert report.reason == "rollback"


def test_same_release_with_different_content_is_refused(kit: TrustKit, tmp_path: Path) -> None:
    first = write_package(tmp_path, "fix-a.tar.gz", version="2a")
    second = write_package(tmp_path, "fix-b.tar.gz", version="2b")
    assert verify(kit, first, kit.manifest_for(first, release=2)).accepted
    assert verify(kit, second, kit.manifest_for(second, release=2)).reason == "release-reused"


def test_same_release_same_package_verifies_again(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package, release=3)
    assert verify(kit, package, manifest).accepted
    assert verify(kit, package, manifest).accepted


def test_package_for_another_model_is_refused(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package, models=("CMS8000",))
    assert verify(kit, package, manifest, model="MN-120").reason == "wrong-model"


def test_manifest_of_another_package_is_refused(kit: TrustKit, tmp_path: Path) -> None:
    package_a = write_package(tmp_path, "cms8000-a.tar.gz", version="A")
    package_b = write_package(tmp_path, "cms8000-b.tar.gz", version="B")
    manifest_a = kit.manifest_for(package_a)
    kit.manifest_for(package_b)
    assert verify(kit, package_b, manifest_a).reason == "package-mismatch"


def test_renamed_package_with_the_approved_bytes_is_accepted(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package)
    renamed = package.rename(tmp_path / "from-usb-stick.tar.gz")
    report = verify(kit, renamed, manifest)
    assert report.accepted and report.require().package_name == package.name


def test_nothing_is_written_when_refused(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package, expires=NOW - timedelta(days=1))
    policy = kit.policy()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert not verify(kit, package, manifest, policy).accepted
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no state, no lock, no temp file


def test_accepted_release_is_recorded_in_the_state_file(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    report = verify(kit, package, kit.manifest_for(package, release=7))
    state = json.loads((kit.directory / "state.json").read_text())
    assert report.recorded and state["models"]["CMS8000"]["release"] == 7


def test_record_false_leaves_the_state_untouched(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    assert verify(kit, package, kit.manifest_for(package), record=False).accepted
    assert not (kit.directory / "state.json").exists()


def test_corrupt_state_file_is_refused_not_reset(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    (kit.directory / "state.json").write_text("{not json")
    assert verify(kit, package, kit.manifest_for(package)).reason == "state-invalid"


def test_require_raises_trust_error_with_the_reason(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    report = verify(kit, package, kit.manifest_for(package), model="CMS6000")
    with pytest.raises(TrustError) as caught:
        report.require()
    assert caught.value.reason == "wrong-model"


def test_report_is_json_ready_and_holds_no_private_key(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    report = verify(kit, package, kit.manifest_for(package))
    text = json.dumps(report.to_dict())
    assert "PRIVATE" not in text and report.to_dict()["scan"]["clean"] is True


def test_policy_that_is_not_a_policy_is_a_refusal(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    assert verify(kit, package, kit.manifest_for(package), bad).reason == "policy-invalid"


def test_missing_manifest_file_is_a_usage_error(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    with pytest.raises(UsageError):
        verify(kit, package, tmp_path / "nope.json")


@pytest.mark.parametrize(("model", "firmware", "expected"), [
    ("CMS8000", VULNERABLE_VERSION, None),
    ("CMS8000", None, None),
    ("MN-120", VULNERABLE_VERSION, "wrong-model"),
    ("CMS8000", FIXED_VERSION, "already-installed"),
    ("CMS8000", "CMS6.000.000.00/0.10(0.10)", "not-upgradable-from"),
])
def test_applies_to_checks_model_and_installed_firmware(kit: TrustKit, tmp_path: Path, model: str,
                                                        firmware: str | None, expected: str | None) -> None:
    package = write_package(tmp_path)
    verified = verify(kit, package, kit.manifest_for(package)).require()
    assert verified.applies_to(model, firmware) == expected


def test_from_versions_may_be_patterns(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    verified = verify(kit, package, kit.manifest_for(package, from_versions=("CMS7.820.*",))).require()
    assert verified.applies_to("CMS8000", VULNERABLE_VERSION) is None


def test_plain_tar_package_verifies(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path, "fix.tar", data=tar_bytes(package_members(), compression=""))
    report = verify(kit, package, kit.manifest_for(package))
    assert report.accepted and report.scan is not None and report.scan.format == "tar"


def test_rotated_policy_still_accepts_manifests_signed_before_rotation(kit: TrustKit, tmp_path: Path) -> None:
    package = write_package(tmp_path)
    manifest = kit.manifest_for(package)  # signed by the old biomed and security keys
    new_biomed = generate_key("ecdsa-p256")
    rotated = kit.policy(extra=[(new_biomed, "hospital-biomed")], name="rotated.yaml")
    assert verify(kit, package, manifest, rotated).accepted
    fresh = kit.manifest_for(package, signers=[new_biomed, kit.keys["hospital-security"]], name="new.json")
    assert verify(kit, package, fresh, rotated).accepted
