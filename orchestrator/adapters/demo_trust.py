"""A ready-made trust setup for the demo, the engine tests and the TUI: two hospital keys (biomedical
engineer and security officer), a policy naming them under the default rules, and a manifest of the
given package attested by both. Real keys, real signatures: nothing here is a stand-in, it is only
generated instead of being the result of a signing ceremony. The key files are NOT encrypted (nobody
is there to type a passphrase); they live in the demo's own directory and sign nothing else. A real
ceremony uses ``cmspatch keys new``, which encrypts them or keeps them on a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from orchestrator.adapters.package_attest import new_envelope
from orchestrator.adapters.package_reader import PackageFilesError, bounded_tar, read_package
from orchestrator.adapters.trust_files import atomic_write, write_private_key
from orchestrator.domain.indicators import ALL_CVES, MODELS
from orchestrator.domain.trust.manifest import Artifact, Manifest
from orchestrator.domain.trust.policy import TrustPolicy, render_policy
from orchestrator.domain.trust.signatures import generate_key
from orchestrator.errors import TrustError, UsageError

DEMO_ROLES = ("hospital-biomed", "hospital-security")


@dataclass(frozen=True)
class DemoTrust:
    policy: Path
    manifest: Path
    keys: dict[str, Path]  # role -> private key file
    key_ids: dict[str, str]  # role -> key id
    state: Path  # a fresh anti-rollback state file location inside ``workdir``


def _package_version(package: Path) -> str:
    try:
        with bounded_tar(package) as archive:  # the package reader's limits: even a demo reads bounded
            for info in archive:
                member = archive.extractfile(info) if info.name.removeprefix("./") == "VERSION" else None
                if member is not None:
                    return member.read(200).decode("utf-8", "replace").strip()
    except (PackageFilesError, TrustError):
        pass
    raise UsageError(f"{package}: no VERSION member; pass version=")


def make_demo_trust(workdir: Path, package: Path, *, models: tuple[str, ...] | list[str] = MODELS,
                    version: str | None = None, release: int = 1, from_versions: tuple[str, ...] = ("*",),
                    expires: datetime | None = None, algorithm: str = "ed25519") -> DemoTrust:
    """Create ``workdir/trust/{biomed,security}.key``, ``policy.yaml`` and ``<package>.manifest.json``.

    ``version`` defaults to the package's VERSION member; ``from_versions`` to any installed version.
    """
    workdir, package = Path(workdir), Path(package)
    home = workdir / "trust"
    home.mkdir(parents=True, exist_ok=True)
    policy = TrustPolicy()
    keys: dict[str, Path] = {}
    key_ids: dict[str, str] = {}
    signers = []
    for role in DEMO_ROLES:
        key = generate_key(algorithm)
        path = home / f"{role.removeprefix('hospital-')}.key"
        if path.exists():
            path.unlink()
        write_private_key(path, key)
        policy = policy.with_key(key.public, role, owner=f"demo {role}")
        keys[role], key_ids[role] = path, key.keyid
        signers.append(key)
    read = read_package(package, declared_size=None, scan=False)
    assert read.sha256 is not None
    manifest = Manifest(
        package=package.name, artifacts=(Artifact(package.name, read.size, read.sha256),),
        models=tuple(models), from_versions=tuple(from_versions),
        target_version=version if version is not None else _package_version(package), release=release,
        cves=tuple(c.value for c in ALL_CVES),
        expires=expires if expires is not None else datetime.now(UTC) + timedelta(days=365),
        created=datetime.now(UTC), note="demo attestation",
    )
    policy_path = home / "policy.yaml"
    manifest_path = home / f"{package.name}.manifest.json"
    atomic_write(policy_path, render_policy(policy).encode("utf-8"))
    atomic_write(manifest_path, new_envelope(manifest, signers).to_json_bytes())
    return DemoTrust(policy=policy_path, manifest=manifest_path, keys=keys, key_ids=key_ids,
                     state=home / "trust-state.json")
