"""Fake firmware: ELF-looking binaries, vendor-style upgrade packages, and what a build does.

A monitor's behaviour is DERIVED from the bytes of its installed binaries and its network config, never
from a flag: installing a real package built here changes what the emulated monitor does, exactly as the
verification code must observe it on a real device. The binaries are not executable code (a monitor's
``/opt/cms/bin/monitor`` is data to hash and scan); they carry an ELF magic so the YARA rule's ELF
condition holds, the strings the backdoor is known by, and a version marker so that builds hash apart.
Deliberately left out: any real ARM code, cramfs images, the vendor's (unknown) package signature.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from orchestrator.domain.indicators import CMS_SERVER, HL7_SERVER, MODELS, MOUNT_STRING
from orchestrator.emulator.catalog import FIXED_VERSION, INSUFFICIENT_VERSION, FirmwareState
from orchestrator.errors import EmulatorError

# Markers inside the fake binaries that switch behaviours on (what the real code paths would be).
UDP_MARKER = b"cms_udp_service_start"  # the CVE-2024-12248 listener
TELEMETRY_MARKER = b"cms_central_stream"  # the CVE-2025-0683 stream (uses the addresses below)
FIXED_MARKER = b"network functions removed per FSCA"
_MTIME = 1735689600  # 2025-01-01T00:00:00Z: fixed so package hashes are stable
_BINARY_SIZE = 16 * 1024


def fake_elf(name: str, version: str, *, backdoor: bool) -> bytes:
    """A deterministic ELF-looking blob; a backdoored one carries the mount string and the addresses."""
    header = b"\x7fELF\x01\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x28\x00\x01\x00\x00\x00"  # ARM, EXEC
    strings = [f"{name} {version}".encode(), b"BusyBox-compatible CMS runtime", b"/etc/network.conf"]
    if backdoor:
        strings += [MOUNT_STRING, str(CMS_SERVER).encode(), str(HL7_SERVER).encode(), UDP_MARKER,
                    TELEMETRY_MARKER, b"cp -rf /mnt/* /opt/cms/ && /opt/cms/bin/run.sh", b"ifconfig eth0 up"]
    else:
        strings += [FIXED_MARKER]
    body = b"\x00".join(strings) + b"\x00"
    seed = hashlib.sha256(f"{name}|{version}|{backdoor}".encode()).digest()
    filler = (seed * (_BINARY_SIZE // len(seed) + 1))[: _BINARY_SIZE - len(header) - len(body)]
    return header + filler + body


def network_conf(*, eth0_enabled: bool) -> bytes:
    return (
        "# CMS network settings\n"
        f"ETH0={'enabled' if eth0_enabled else 'disabled'}\n"
        "ETH0_MODE=dhcp\n"
        "WIFI=disabled\n"
    ).encode()


@dataclass(frozen=True)
class Build:
    """What the installed firmware does, derived from its bytes (see module docstring)."""

    monitor_mount: bool  # CVE-2025-0626: the menu-update trigger mounts /pm
    update_mount: bool  # CVE-2025-1204: the boot-key trigger mounts /pm
    telemetry: bool  # CVE-2025-0683: streams patient data while eth0 is up
    udp_listener: bool  # CVE-2024-12248
    eth0_enabled: bool  # from /etc/network.conf

    @property
    def state(self) -> FirmwareState:
        if not (self.monitor_mount or self.update_mount or self.telemetry or self.udp_listener):
            return FirmwareState.FIXED
        return FirmwareState.VULNERABLE if self.eth0_enabled else FirmwareState.INSUFFICIENT


def derive_build(monitor: bytes, update: bytes, netconf: bytes) -> Build:
    addresses = str(CMS_SERVER).encode() in monitor or str(HL7_SERVER).encode() in monitor
    return Build(
        monitor_mount=MOUNT_STRING in monitor,
        update_mount=MOUNT_STRING in update,
        telemetry=addresses and TELEMETRY_MARKER in monitor,
        udp_listener=UDP_MARKER in monitor,
        eth0_enabled=b"ETH0=disabled" not in netconf,
    )


def binaries_for(state: FirmwareState, version: str) -> tuple[bytes, bytes, bytes]:
    """(monitor, update, network.conf) of a build in the given state."""
    backdoor = state is not FirmwareState.FIXED
    return (
        fake_elf("monitor", version, backdoor=backdoor),
        fake_elf("update", version, backdoor=backdoor),
        network_conf(eth0_enabled=state is FirmwareState.VULNERABLE or state is FirmwareState.FIXED),
    )


def build_package(path: str | os.PathLike[str], *, variant: str = "fixed", version: str | None = None,
                  models: Iterable[str] | None = None) -> Path:
    """Write a vendor-style upgrade package (.tar.gz) and return its path.

    Members: VERSION, MODELS, bin/monitor, bin/update (+ etc/network.conf for "insufficient", which is
    what disables eth0). Output is byte-for-byte deterministic for the same arguments.
    """
    try:
        state = FirmwareState(variant)
    except ValueError as exc:
        raise EmulatorError(f"unknown package variant {variant!r} (fixed, insufficient, vulnerable)",
                            reason="bad-variant") from exc
    default = {FirmwareState.FIXED: FIXED_VERSION, FirmwareState.INSUFFICIENT: INSUFFICIENT_VERSION,
               FirmwareState.VULNERABLE: "CMS7.820.075.08/0.74(0.75)"}[state]
    version = version or default
    model_list = list(models) if models is not None else list(MODELS)
    unknown = [m for m in model_list if m not in MODELS]
    if unknown or not model_list:
        raise EmulatorError(f"unknown model(s) {unknown} (known: {', '.join(MODELS)})", reason="bad-model")
    monitor, update, netconf = binaries_for(state, version)
    members: list[tuple[str, bytes, int]] = [
        ("VERSION", (version + "\n").encode(), 0o644),
        ("MODELS", ("\n".join(model_list) + "\n").encode(), 0o644),
        ("bin/monitor", monitor, 0o755),
        ("bin/update", update, 0o755),
    ]
    if state is FirmwareState.INSUFFICIENT:
        members.append(("etc/network.conf", netconf, 0o644))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for directory in ("bin", "etc") if state is FirmwareState.INSUFFICIENT else ("bin",):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, _MTIME
            tar.addfile(info)
        for name, data, mode in members:
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, _MTIME
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=_MTIME) as gz:
        gz.write(raw.getvalue())
    os.replace(tmp, out)
    return out
