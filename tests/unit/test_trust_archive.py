"""What is inside a package: unsafe members, the backdoor in any member or nested archive, formats."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from pathlib import Path

import pytest

from orchestrator.adapters.package_reader import CHUNK, read_package
from orchestrator.adapters.package_verify import verify_package
from orchestrator.domain.indicators import MOUNT_STRING
from orchestrator.errors import TrustError
from tests.trust_helpers import NOW, TrustKit, backdoored_members, elf, package_members, tar_bytes, zip_bytes


@pytest.fixture
def kit(tmp_path: Path) -> TrustKit:
    return TrustKit.create(tmp_path)


def refusal(kit: TrustKit, data: bytes, name: str = "cms8000-fix.tar.gz", **kw: object) -> str | None:
    package = kit.directory / name
    package.write_bytes(data)
    report = verify_package(package, kit.manifest_for(package), kit.policy(), state=kit.directory / "s.json",
                            now=NOW, **kw)  # type: ignore[arg-type]
    return report.reason


def special(name: str, kind: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


def test_member_with_absolute_path_is_refused(kit: TrustKit) -> None:
    data = tar_bytes({**package_members(), "/etc/init.d/rcS": b"#!/bin/sh\n"})
    assert refusal(kit, data) == "member-absolute-path"


def test_member_climbing_out_with_dotdot_is_refused(kit: TrustKit) -> None:
    data = tar_bytes({**package_members(), "bin/../../etc/passwd": b"root::0:0::/:/bin/sh\n"})
    assert refusal(kit, data) == "member-path-traversal"


def test_symlink_member_is_refused(kit: TrustKit) -> None:
    data = tar_bytes(package_members(), extra=[special("bin/sh", tarfile.SYMTYPE, "/bin/busybox")])
    assert refusal(kit, data) == "member-link"


def test_hardlink_member_is_refused(kit: TrustKit) -> None:
    data = tar_bytes(package_members(), extra=[special("bin/monitor2", tarfile.LNKTYPE, "bin/monitor")])
    assert refusal(kit, data) == "member-link"


def test_device_file_member_is_refused(kit: TrustKit) -> None:
    data = tar_bytes(package_members(), extra=[special("dev/mem", tarfile.CHRTYPE)])
    assert refusal(kit, data) == "member-device"


def test_package_still_carrying_the_mount_string_is_refused(kit: TrustKit) -> None:
    assert refusal(kit, tar_bytes(backdoored_members())) == "backdoor-present"


def test_package_still_carrying_an_indicator_address_is_refused(kit: TrustKit) -> None:
    members = {**package_members(), "etc/cms.conf": b"central=202.114.4.120\nport=511\n"}
    assert refusal(kit, tar_bytes(members)) == "backdoor-present"


def test_insufficient_fix_that_only_disables_eth0_is_refused(kit: TrustKit) -> None:
    members = {**backdoored_members(), "etc/network/interfaces": b"# eth0 disabled by the January fix\n"}
    assert refusal(kit, tar_bytes(members)) == "backdoor-present"


def test_backdoor_inside_a_nested_tar_gz_is_found(kit: TrustKit) -> None:
    inner = tar_bytes(backdoored_members())
    members = {**package_members(), "payload/rootfs.tar.gz": inner}
    assert refusal(kit, tar_bytes(members)) == "backdoor-present"


def test_backdoor_inside_a_nested_zip_is_found(kit: TrustKit) -> None:
    inner = zip_bytes(backdoored_members())
    assert refusal(kit, tar_bytes({**package_members(), "payload/update.zip": inner})) == "backdoor-present"


def test_backdoor_inside_a_zip_package_is_found(kit: TrustKit) -> None:
    assert refusal(kit, zip_bytes(backdoored_members()), "fix.zip") == "backdoor-present"


def test_clean_zip_package_verifies(kit: TrustKit) -> None:
    assert refusal(kit, zip_bytes(package_members()), "fix.zip") is None


def test_backdoor_in_a_gzip_compressed_member_is_found(kit: TrustKit) -> None:
    members = {**package_members(), "bin/monitor.gz": gzip.compress(elf(MOUNT_STRING))}
    assert refusal(kit, tar_bytes(members)) == "backdoor-present"


def test_pattern_straddling_the_read_chunk_boundary_is_found(kit: TrustKit) -> None:
    monitor = elf(b"\x00" * (CHUNK - len(elf()) - 20)) + MOUNT_STRING + b"\x00" * 100
    assert refusal(kit, tar_bytes(package_members(monitor=monitor))) == "backdoor-present"


@pytest.mark.parametrize("compression", ["", "gz", "bz2", "xz"])
def test_tar_in_every_supported_compression_is_inspected(kit: TrustKit, compression: str) -> None:
    assert refusal(kit, tar_bytes(backdoored_members(), compression=compression)) == "backdoor-present"


def test_archive_nested_two_levels_deep_is_refused_as_too_deep(kit: TrustKit) -> None:
    level2 = tar_bytes(package_members())
    level1 = tar_bytes({"deeper.tar.gz": level2})
    assert refusal(kit, tar_bytes({**package_members(), "payload.tar.gz": level1})) == "nesting-too-deep"


def test_unknown_format_is_refused_as_uninspectable(kit: TrustKit) -> None:
    assert refusal(kit, b"SQSH" + bytes(range(256)) * 8, "fix.img") == "uninspectable"


def test_unknown_format_is_accepted_when_acknowledged(kit: TrustKit) -> None:
    package = kit.directory / "fix.img"
    package.write_bytes(b"SQSH" + bytes(range(256)) * 8)
    report = verify_package(package, kit.manifest_for(package), kit.policy(), state=kit.directory / "s.json",
                            now=NOW, accept_uninspectable=True)
    assert report.accepted
    assert "not recognised" in report.require().uninspected[0]  # the acknowledgement travels with it


def test_acknowledging_uninspectable_does_not_hide_a_visible_backdoor(kit: TrustKit) -> None:
    data = b"SQSH" + MOUNT_STRING
    assert refusal(kit, data, "fix.img", accept_uninspectable=True) == "backdoor-present"


def test_corrupt_archive_is_refused(kit: TrustKit) -> None:
    data = tar_bytes(package_members())[:-30]  # a gzip stream cut short, attested as such
    assert refusal(kit, data) == "archive-corrupt"


def test_attest_refuses_to_sign_a_backdoored_package(kit: TrustKit) -> None:
    from orchestrator.adapters.package_attest import attest_package

    package = kit.directory / "bad.tar.gz"
    package.write_bytes(tar_bytes(backdoored_members()))
    out = kit.directory / "bad.manifest.json"
    with pytest.raises(TrustError) as caught:
        attest_package(package, kit.keys["hospital-biomed"], version="x", models=("CMS8000",),
                       from_versions=("*",), release=1, cves=(), expires=NOW, out=out)
    assert caught.value.reason == "backdoor-present" and not out.exists()


def test_hash_streams_in_chunks_and_matches_hashlib(tmp_path: Path) -> None:
    import hashlib

    data = bytes(range(256)) * (3 * CHUNK // 256 + 7)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    read = read_package(path, declared_size=len(data), scan=False)
    assert read.sha256 == hashlib.sha256(data).hexdigest() and read.size == len(data)


def test_compressed_formats_are_recognised() -> None:
    from orchestrator.adapters.package_reader import sniff

    raw = tar_bytes(package_members(), compression="")
    assert [sniff(x[:512]) for x in (raw, gzip.compress(raw), bz2.compress(raw), lzma.compress(raw),
                                     zip_bytes({"a": b"b"}), elf(), io.BytesIO(b"??").getvalue())] == \
        ["tar", "gz", "bz2", "xz", "zip", "elf", "unknown"]


def test_compressed_blob_of_unknown_format_is_uninspectable(kit: TrustKit) -> None:
    assert refusal(kit, gzip.compress(b"SQSH" + bytes(range(256)) * 8), "fix.img.gz") == "uninspectable"


def test_second_signer_checking_the_package_refuses_a_backdoored_one(kit: TrustKit) -> None:
    from orchestrator.adapters.package_attest import sign_manifest

    package = kit.directory / "bad.tar.gz"
    package.write_bytes(tar_bytes(backdoored_members()))
    manifest = kit.manifest_for(package, signers=[kit.keys["hospital-biomed"]])
    before = manifest.read_bytes()
    with pytest.raises(TrustError) as caught:
        sign_manifest(manifest, kit.keys["hospital-security"], package=package)
    assert caught.value.reason == "backdoor-present" and manifest.read_bytes() == before


@pytest.mark.parametrize("compression", ["", "gz"])
def test_memory_stays_flat_whatever_the_package_size(kit: TrustKit, compression: str) -> None:
    import tracemalloc

    big = 24 * CHUNK
    package = kit.directory / f"big.tar{'.gz' if compression else ''}"
    with tarfile.open(package, f"w:{compression}" if compression else "w") as archive:
        info = tarfile.TarInfo("bin/monitor")
        info.size = big
        archive.addfile(info, io.BytesIO(bytes(big)))
    tracemalloc.start()
    try:
        read = read_package(package, declared_size=package.stat().st_size)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert read.scan is not None and read.scan.bytes_scanned >= big
    assert peak < 8 * CHUNK, f"peak {peak} bytes for a {big}-byte member"


def test_the_hashing_thread_sees_every_byte_in_order_whatever_the_read_sizes(tmp_path: Path) -> None:
    import hashlib
    import random
    import threading

    from orchestrator.adapters.package_reader import HashingReader

    data = random.Random(15).randbytes(5 * CHUNK + 12345)
    path = tmp_path / "blob"
    path.write_bytes(data)
    sizes = [512, 3 * CHUNK, 1, 70_000, CHUNK]  # small reads are joined, large ones queued whole
    with open(path, "rb") as handle, HashingReader(handle, None) as reader:
        for size in sizes:
            reader.read(size)
        reader.drain()
        digest = reader.digest.hexdigest()
    assert digest == hashlib.sha256(data).hexdigest() and reader.count == len(data)
    assert not any(t.name == "package-sha256" for t in threading.enumerate())
