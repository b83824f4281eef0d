"""Read device profiles: a shipped name (``orchestrator/profiles/NAME.yml``) or a path, through the one
strict loader, validated by ``domain.profile``.

A ``ProfileBook`` reads each profile once per process, so a fleet of 2,000 monitors naming the same
profile costs one file read; a bad profile is a located ``StrictLoadError`` (exit 2), raised before any
monitor is touched.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable
from pathlib import Path

from orchestrator.adapters.strict_files import load_yaml_file_document
from orchestrator.domain.devices import Device
from orchestrator.domain.profile import DEFAULT_PROFILE, NAME_RE, PROFILE_LIMITS, DeviceProfile, parse_profile

SHIPPED = Path(__file__).resolve().parent.parent / "profiles"


def profile_path(ref: str) -> Path:
    """A shipped profile's file for a bare name, else ``ref`` as a path."""
    return SHIPPED / f"{ref}.yml" if NAME_RE.fullmatch(ref) else Path(ref)


def load_profile(ref: str = DEFAULT_PROFILE) -> DeviceProfile:
    path = profile_path(ref)
    return parse_profile(load_yaml_file_document(path, PROFILE_LIMITS), str(path))


@functools.cache
def shipped_profile() -> DeviceProfile:
    """The default profile (``emulated-cms-service-shell``), read once per process: what a caller that
    names no profile gets, so no second copy of its commands lives in code."""
    return load_profile(DEFAULT_PROFILE)


class ProfileBook:
    """Profiles by reference, read on first use (thread-safe): ``book.of(device)``."""

    def __init__(self, devices: Iterable[Device] = ()) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[str, DeviceProfile] = {}
        for device in devices:  # read them all now: a bad profile refuses the run before it starts
            self.get(device.profile)

    def get(self, ref: str) -> DeviceProfile:
        with self._lock:
            if ref not in self._loaded:
                self._loaded[ref] = load_profile(ref)
            return self._loaded[ref]

    def of(self, device: Device) -> DeviceProfile:
        return self.get(device.profile)
