"""The hands-on delivery path: a work order per monitor, carried out by a technician with a USB stick.

For units that expose no service access the engine cannot push anything; it issues a work order that
says where the monitor is (site, ward, bed, serial, asset tag), which file to install (name, SHA-256,
size), the steps (including the clinical precautions the engine would otherwise check itself), and
how to confirm. How this unit is installed by hand (where the file goes on the USB stick, the install
steps, where the running version is read) is its device profile's ``hands_on`` (``domain.profile``).
The monitor then waits in AWAITING_TECHNICIAN until ``cmspatch confirm`` (or
``Engine.confirm_manual``) records who did it and the version they read; it then waits in AWAITING_BENCH
for its bench session (``cmspatch bench DEVICE``), which verifies it from the network at the bench
(``domain.handson``). Waiting is never a failure and never counts against a wave's budget.

``ManualTransport.open`` refuses with ``no-service-access``: nothing on this path talks to a monitor.
Work orders are written as printable text and JSON when an output directory is given (temp file then
``os.replace``, so a reader never sees half an order).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from orchestrator.domain.devices import Device
from orchestrator.domain.profile import DeviceProfile
from orchestrator.errors import PermanentTransportError


@dataclass(frozen=True)
class WorkOrder:
    campaign: str
    device: str
    site: str
    ward: str
    bed: str
    serial: str
    asset_tag: str | None
    model: str
    package_name: str
    sha256: str
    size: int
    target_version: str
    issued_at: str
    steps: tuple[str, ...]
    profile: str = ""  # the device profile the steps come from
    usb_path: str = ""  # where the file goes on the USB stick
    about_screen: str = ""  # where the technician reads the running version

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["steps"] = list(self.steps)
        data["text"] = self.text()
        return data

    def text(self) -> str:
        lines = [
            f"WORK ORDER  campaign {self.campaign}  issued {self.issued_at}",
            "",
            f"Monitor   {self.device} ({self.model})",
            f"Where     {self.site} / {self.ward} / bed {self.bed}",
            f"Serial    {self.serial}" + (f"    Asset tag {self.asset_tag}" if self.asset_tag else ""),
            "",
            f"File      {self.package_name}  ({self.size} bytes)",
            f"SHA-256   {self.sha256}",
            f"Installs  firmware {self.target_version}",
            f"On USB    {self.usb_path}",
            f"Procedure device profile {self.profile}",
            "",
            "Steps",
        ]
        lines += [f"  {i}. {step}" for i, step in enumerate(self.steps, 1)]
        lines += ["", "Technician ____________________   Date/time ______________   Signature ____________"]
        return "\n".join(lines) + "\n"


def build_work_order(
    device: Device,
    *,
    profile: DeviceProfile,
    campaign: str,
    package_name: str,
    sha256: str,
    size: int,
    target_version: str,
    issued_at: str,
) -> WorkOrder:
    steps = (
        "Check with the nurse in charge that no patient is connected and no alarm is active; "
        "if either, stop and come back later.",
        f"Confirm the serial number on the label reads {device.serial}.",
        f"On the service laptop, check the file's SHA-256 equals {sha256} "
        "(sha256sum or Get-FileHash); if it differs, stop and report.",
        *profile.hands_on.steps_for(profile, package_name),
        profile.hands_on.version_step(target_version),
        f"Record completion: cmspatch confirm {device.name} --technician YOUR-NAME --version VERSION-SHOWN",
    )
    return WorkOrder(
        campaign=campaign,
        device=device.name,
        site=device.site,
        ward=device.ward,
        bed=device.bed,
        serial=device.serial,
        asset_tag=device.asset_tag,
        model=device.model,
        package_name=package_name,
        sha256=sha256,
        size=size,
        target_version=target_version,
        issued_at=issued_at,
        steps=steps,
        profile=profile.name,
        usb_path=profile.hands_on.usb_path_for(package_name),
        about_screen=profile.hands_on.about_screen,
    )


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ManualTransport:
    """Implements ``ports.DeviceTransport`` for units without service access, plus ``issue``."""

    name = "manual"

    def __init__(self, out_dir: str | os.PathLike[str] | None = None) -> None:
        self.out_dir = Path(out_dir) if out_dir is not None else None

    def open(self, device: Device) -> Any:
        raise PermanentTransportError(
            f"{device.name}: hands-on unit, no service access", reason="no-service-access", host=device.name
        )

    def issue(self, order: WorkOrder) -> list[Path]:
        """Write the printable and JSON forms; returns the paths written (none without ``out_dir``)."""
        if self.out_dir is None:
            return []
        stem = self.out_dir / f"work-order-{order.device}"
        txt, js = stem.with_suffix(".txt"), stem.with_suffix(".json")
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            _write_atomic(txt, order.text())
            _write_atomic(js, json.dumps(order.to_dict(), indent=2, sort_keys=True) + "\n")
        except OSError as exc:  # a full or read-only disk: this unit's order is not out, say so
            raise PermanentTransportError(f"{order.device}: work order not written to {self.out_dir}: "
                                          f"{exc.strerror or exc}", reason="work-order-unwritable",
                                          host=order.device) from exc
        return [txt, js]
