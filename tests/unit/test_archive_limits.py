"""Bounded archive reading: each decompression limit refuses with its own reason, and reading stops there.

The bombs are small (see ``tests.bomb_helpers``); the limits are lowered where a test needs a smaller
bomb than the defaults would catch. Every refusal here is accepted by the code before the limits existed.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import time
import zipfile
from pathlib import Path

import pytest

from orchestrator.adapters import package_reader
from orchestrator.adapters.package_attest import sign_manifest
from orchestrator.adapters.package_reader import CHUNK, PackageFilesError, package_expectations, read_package
from orchestrator.adapters.package_verify import verify_package
from orchestrator.domain.trust.limits import MIB, ArchiveLimits, LimitsInvalid
from orchestrator.errors import TrustError
from tests.bomb_helpers import tar_gz_of_zeros, zeros_gz, zip_lying_about_size
from tests.trust_helpers import NOW, TrustKit, backdoored_members, package_members, tar_bytes, zip_bytes

GIB = 1 << 30
NO_RATIO = ArchiveLimits(max_ratio=1 << 40)  # so that the size limits are the ones tested


@pytest.fixture
def kit(tmp_path: Path) -> TrustKit:
    return TrustKit.create(tmp_path)


def verify(kit: TrustKit, data: bytes, name: str = "cms8000-fix.tar.gz", **kw: object):
    package = kit.directory / name
    package.write_bytes(data)
    return verify_package(package, kit.manifest_for(package), kit.policy(), state=kit.directory / "s.json",
                          now=NOW, **kw)  # type: ignore[arg-type]


def refusal(kit: TrustKit, data: bytes, name: str = "cms8000-fix.tar.gz", **kw: object) -> str | None:
    return verify(kit, data, name, **kw).reason


def nested_gzip_bomb(expanded: int) -> bytes:
    """A tar.gz package whose member ``payload/rootfs.img.gz`` expands to ``expanded`` zero bytes."""
    return tar_bytes({**package_members(), "payload/rootfs.img.gz": zeros_gz(expanded)})


def test_nested_gzip_bomb_is_refused_quickly_having_expanded_no_more_than_its_budget(kit: TrustKit) -> None:
    data = nested_gzip_bomb(GIB)  # a few KB that expand to 1 GiB, through two gzip layers
    started = time.monotonic()
    report = verify(kit, data)
    elapsed = time.monotonic() - started
    assert report.reason == "expanded-too-large", report.message
    scan = report.scan
    assert scan is not None and scan.budget == 64 * MIB  # the floor: 64x a few KB is less
    assert scan.expanded <= scan.budget + CHUNK  # stopped at the limit, not at the end of the gigabyte
    assert elapsed < 5, f"{elapsed:.1f} s"


def test_expansion_beyond_the_multiple_of_the_declared_size_is_refused(kit: TrustKit) -> None:
    limits = ArchiveLimits(expansion_factor=8, floor=0, max_ratio=1 << 40)
    report = verify(kit, tar_gz_of_zeros(8 * MIB), limits=limits)
    assert report.reason == "expanded-too-large"
    assert report.scan is not None and report.scan.budget == 8 * len(tar_gz_of_zeros(8 * MIB))


def test_absolute_cap_applies_whatever_the_multiple_allows(kit: TrustKit) -> None:
    limits = ArchiveLimits(expansion_factor=1 << 20, max_expanded=2 * MIB, max_ratio=1 << 40)
    report = verify(kit, tar_gz_of_zeros(4 * MIB), limits=limits)
    assert report.reason == "expanded-too-large" and "at most 2 MiB" in report.message


def test_same_package_expanding_within_its_limits_verifies(kit: TrustKit) -> None:
    assert refusal(kit, tar_gz_of_zeros(4 * MIB), limits=NO_RATIO) is None


def test_expansion_ratio_beyond_the_limit_is_refused(kit: TrustKit) -> None:
    limits = ArchiveLimits(max_ratio=100, floor=MIB, expansion_factor=1 << 20)
    assert refusal(kit, tar_gz_of_zeros(8 * MIB), limits=limits) == "expansion-ratio-too-high"


def test_ratio_is_not_judged_below_the_floor(kit: TrustKit) -> None:
    limits = ArchiveLimits(max_ratio=100, floor=16 * MIB, expansion_factor=1 << 20)
    assert refusal(kit, tar_gz_of_zeros(8 * MIB), limits=limits) is None


def test_default_ratio_stops_a_bzip2_bomb_at_the_floor(kit: TrustKit) -> None:
    import bz2

    info = tarfile.TarInfo("payload/firmware.img")
    info.size = 256 * MIB
    zeros = bz2.compress(bytes(16 * MIB), 9)  # bzip2 streams one after another are one bzip2 file
    data = bz2.compress(info.tobuf(format=tarfile.USTAR_FORMAT)) + zeros * 16 + bz2.compress(bytes(1024))
    report = verify(kit, data, "fix.tar.bz2", limits=ArchiveLimits(expansion_factor=1 << 20))
    assert report.reason == "expansion-ratio-too-high"
    assert report.scan is not None and report.scan.expanded <= 64 * MIB + CHUNK


def test_archive_nested_beyond_max_depth_is_refused(kit: TrustKit) -> None:
    data = tar_bytes({**package_members(), "payload/rootfs.tar.gz": tar_bytes(package_members())})
    assert refusal(kit, data) is None  # depth 1: opened by default
    assert refusal(kit, data, limits=ArchiveLimits(max_depth=0)) == "nesting-too-deep"


def test_raising_max_depth_opens_the_deeper_archive_and_finds_the_backdoor(kit: TrustKit) -> None:
    level1 = tar_bytes({"deeper.tar.gz": tar_bytes(backdoored_members())})
    data = tar_bytes({**package_members(), "payload.tar.gz": level1})
    assert refusal(kit, data) == "nesting-too-deep"
    assert refusal(kit, data, limits=ArchiveLimits(max_depth=2)) == "backdoor-present"


def test_stream_compressed_three_times_over_is_refused_as_too_deep(kit: TrustKit) -> None:
    data = gzip.compress(gzip.compress(tar_bytes(package_members())))
    assert refusal(kit, data, "fix.tar.gz.gz.gz") == "nesting-too-deep"


def test_more_members_than_the_limit_are_refused(kit: TrustKit) -> None:
    members = {**package_members(), **{f"share/doc/{i}.txt": b"x" for i in range(30)}}
    assert refusal(kit, tar_bytes(members)) is None
    assert refusal(kit, tar_bytes(members), limits=ArchiveLimits(max_members=20)) == "too-many-members"


def test_members_count_at_every_level_together(kit: TrustKit) -> None:
    inner = tar_bytes({f"lib/{i}.so": b"\x7fELF" for i in range(12)})
    data = tar_bytes({**package_members(), "payload/rootfs.tar.gz": inner})  # 4 + 1 + 12 members
    assert refusal(kit, data, limits=ArchiveLimits(max_members=17)) is None
    assert refusal(kit, data, limits=ArchiveLimits(max_members=16)) == "too-many-members"


def test_plain_tar_member_count_is_bounded_too(kit: TrustKit) -> None:
    members = {**package_members(), **{f"share/{i}": b"" for i in range(30)}}
    data = tar_bytes(members, compression="")
    assert refusal(kit, data, "fix.tar", limits=ArchiveLimits(max_members=20)) == "too-many-members"


def test_zip_with_more_entries_than_the_limit_is_refused(kit: TrustKit) -> None:
    data = zip_bytes({**package_members(), **{f"share/{i}": b"" for i in range(30)}})
    assert refusal(kit, data, "fix.zip", limits=ArchiveLimits(max_members=20)) == "too-many-members"


def test_zip_whose_end_record_understates_its_entries_is_refused_by_its_directory_size(
        kit: TrustKit, monkeypatch: pytest.MonkeyPatch) -> None:
    data = bytearray(zip_bytes({f"share/{'n' * 1000}{i}": b"" for i in range(30)}))
    end = data.rfind(b"PK\x05\x06")
    data[end + 8:end + 12] = (1).to_bytes(2, "little") * 2  # "1 entry"; the directory holds 30 of 1 KB
    limits = ArchiveLimits(max_members=20)
    package = kit.directory / "fix.zip"
    package.write_bytes(bytes(data))
    manifest = kit.manifest_for(package)

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("zipfile parsed a directory the limits had refused")

    monkeypatch.setattr(package_reader.zipfile, "ZipFile", never)
    report = verify_package(package, manifest, kit.policy(), state=kit.directory / "s.json", now=NOW,
                            limits=limits)
    assert report.reason == "too-many-members", report.message


def test_zip_member_expanding_past_its_declared_size_is_counted_by_its_real_bytes(kit: TrustKit) -> None:
    data = zip_lying_about_size(bytes(8 * MIB), declared=100)  # the directory says 100 bytes
    limits = ArchiveLimits(max_expanded=2 * MIB, max_ratio=1 << 40)
    assert refusal(kit, data, "fix.zip", limits=limits) == "expanded-too-large"


def test_zip_member_whose_data_differs_from_its_declared_size_is_refused(kit: TrustKit) -> None:
    from orchestrator.domain.indicators import MOUNT_STRING

    hidden = b"\x7fELF fixed\n" + b"\x00" * 100 + MOUNT_STRING  # the backdoor past the declared 11 bytes
    report = verify(kit, zip_lying_about_size(hidden, declared=11), "fix.zip")
    assert not report.accepted
    assert report.reason in ("backdoor-present", "archive-corrupt")
    assert any(p.reason == "archive-corrupt" and "declares 11 bytes" in p.detail for p in report.problems)


def test_zip_declaring_more_than_the_budget_is_refused_before_inflating(kit: TrustKit) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("img", bytes(4 * MIB))
    report = verify(kit, buf.getvalue(), "fix.zip", limits=ArchiveLimits(max_expanded=MIB))
    assert report.reason == "expanded-too-large" and "declares" in report.message
    assert report.scan is not None and report.scan.expanded == 0


def test_concatenated_gzip_members_are_all_scanned(kit: TrustKit) -> None:
    raw = tar_bytes(backdoored_members(), compression="")
    data = gzip.compress(raw[:700]) + gzip.compress(raw[700:])  # valid gzip: members one after another
    assert refusal(kit, data) == "backdoor-present"


def test_bytes_after_the_compressed_stream_are_refused_as_corrupt(kit: TrustKit) -> None:
    assert refusal(kit, tar_bytes(package_members()) + b"hidden tail") == "archive-corrupt"


def test_second_signer_checking_a_bomb_refuses_to_sign(kit: TrustKit) -> None:
    package = kit.directory / "bomb.tar.gz"
    package.write_bytes(tar_gz_of_zeros(4 * MIB))
    manifest = kit.manifest_for(package, signers=[kit.keys["hospital-biomed"]])
    before = manifest.read_bytes()
    with pytest.raises(TrustError) as caught:
        sign_manifest(manifest, kit.keys["hospital-security"], package=package,
                      limits=ArchiveLimits(max_expanded=MIB, max_ratio=1 << 40))
    assert caught.value.reason == "expanded-too-large" and manifest.read_bytes() == before


def test_reading_the_package_binaries_is_bounded_too(tmp_path: Path) -> None:
    package = tmp_path / "bomb.tar.gz"
    package.write_bytes(tar_gz_of_zeros(4 * MIB, name="bin/monitor"))
    with pytest.raises(TrustError) as caught:
        package_expectations(package, ArchiveLimits(max_expanded=MIB, max_ratio=1 << 40))
    assert caught.value.reason == "expanded-too-large"
    many = tmp_path / "many.tar.gz"
    many.write_bytes(tar_bytes({**package_members(), **{f"s/{i}": b"" for i in range(30)}}))
    with pytest.raises(TrustError) as caught:
        package_expectations(many, ArchiveLimits(max_members=20))
    assert caught.value.reason == "too-many-members"
    version, hashes = package_expectations(many)  # within the defaults: read as before
    assert version and set(hashes) == {"/opt/cms/bin/monitor", "/opt/cms/bin/update"}


def test_package_binaries_of_a_non_tar_stay_a_usage_error(tmp_path: Path) -> None:
    package = tmp_path / "fix.zip"
    package.write_bytes(zip_bytes(package_members()))
    with pytest.raises(PackageFilesError):
        package_expectations(package)


def test_verify_report_states_the_limits_that_applied(kit: TrustKit) -> None:
    from orchestrator.cli.package import render_report

    limits = ArchiveLimits(max_members=20)
    report = verify(kit, tar_bytes({**package_members(), **{f"s/{i}": b"" for i in range(30)}}),
                    limits=limits)
    data = report.to_dict()
    assert data["limits"]["max_members"] == 20 and data["limits"]["max_depth"] == 1
    assert data["scan"]["limit_exceeded"]["reason"] == "too-many-members"
    assert data["scan"]["expanded_budget_bytes"] == 64 * MIB
    text = render_report(report)
    assert "limits     expands to at most 64 MiB for this package (64x its size" in text
    assert "20 members" in text
    assert "! [too-many-members]" in text


@pytest.mark.parametrize("field", ["expansion_factor", "max_expanded", "max_ratio", "max_members"])
def test_limits_below_their_minimum_are_refused(field: str) -> None:
    with pytest.raises(LimitsInvalid) as caught:
        ArchiveLimits(**{field: 0})
    assert caught.value.name == field


def test_budget_is_the_multiple_of_the_size_between_the_floor_and_the_cap() -> None:
    limits = ArchiveLimits()
    assert limits.budget(1000) == 64 * MIB
    assert limits.budget(10 * MIB) == 640 * MIB
    assert limits.budget(500 * MIB) == 2048 * MIB


def test_memory_stays_flat_while_a_bomb_is_refused(tmp_path: Path) -> None:
    import tracemalloc

    package = tmp_path / "bomb.tar.gz"
    package.write_bytes(tar_gz_of_zeros(256 * MIB))
    tracemalloc.start()
    try:
        read = read_package(package, declared_size=None, limits=NO_RATIO)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert read.scan is not None and read.scan.breach is not None
    assert read.scan.breach.reason == "expanded-too-large"
    assert peak < 8 * CHUNK, f"peak {peak} bytes"


def test_oversized_tar_metadata_header_is_refused_before_it_is_read_into_memory(kit: TrustKit) -> None:
    import tracemalloc

    info = tarfile.TarInfo("bin/monitor")
    info.pax_headers = {"comment": "x" * (4 * MIB)}  # a PAX header tarfile would hold whole
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(info, io.BytesIO(b""))
    tracemalloc.start()
    try:
        report = verify(kit, buf.getvalue())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.reason == "archive-corrupt" and "metadata header" in report.message
    assert peak < 3 * MIB, f"peak {peak} bytes"


def test_zip_claiming_a_version_zipfile_cannot_read_is_corrupt_not_an_internal_error(kit: TrustKit) -> None:
    data = bytearray(zip_bytes(package_members()))
    directory = data.find(b"PK\x01\x02")
    data[directory + 6:directory + 8] = (99).to_bytes(2, "little")  # "needs version 9.9 to extract"
    assert refusal(kit, bytes(data), "fix.zip") == "archive-corrupt"


def test_zip_member_with_an_empty_name_is_walked_not_an_internal_error(kit: TrustKit) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr(zipfile.ZipInfo(""), b"\x7fELF")
        for name, content in package_members().items():
            archive.writestr(name, content)
    assert refusal(kit, buf.getvalue(), "fix.zip") is None


def test_tui_package_view_shows_the_limit_that_stopped_reading_and_the_limits(kit: TrustKit) -> None:
    from tui.screens.package import render_report as tui_report

    report = verify(kit, tar_gz_of_zeros(4 * MIB), limits=ArchiveLimits(max_expanded=MIB, max_ratio=1 << 40))
    text = tui_report(report).plain
    assert "✖ stopped at a limit: the package: more than 1 MiB expanded" in text
    assert "max expanded bytes: 1048576" in text.lower()
