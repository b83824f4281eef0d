"""A vitals check against a patient simulator: does the monitor display what the simulator sends?

The Ministry's circular and the FDA ask facilities to watch for displayed values that do not match the
patient, a sign of tampering. At the bed or at the bench, a technician connects a patient simulator set
to known values and enters what the monitor shows; a difference beyond the tolerance is a *tampering
finding*, recorded with both sets of values (simulator values, not patient data) and opening an incident
draft.

Parameters and default tolerances (the usual accuracy a bedside monitor is specified to, as a
simulator check would apply them; a device profile may state the vendor's own):

    hr     heart rate, bpm            +-2 bpm or 2 %, whichever is larger
    spo2   oxygen saturation, %       +-2 percentage points
    nibp   blood pressure, mmHg       +-5 mmHg, systolic and diastolic each ("120/80")
    temp   temperature, deg C         +-0.2 deg C
    resp   respiration rate, rpm      +-2 rpm

A parameter the simulator sets but the technician did not enter is *not checked* (and said so), never
"within tolerance"; one entered without a simulator value is refused as input.

Deliberately left out: no I/O; the caller journals the result and writes the incident draft.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import UsageError

PARAMETERS: dict[str, tuple[str, str, float, float]] = {
    # name: (label, unit, absolute tolerance, relative tolerance)
    "hr": ("heart rate", "bpm", 2.0, 0.02),
    "spo2": ("SpO2", "%", 2.0, 0.0),
    "sys": ("NIBP systolic", "mmHg", 5.0, 0.0),
    "dia": ("NIBP diastolic", "mmHg", 5.0, 0.0),
    "temp": ("temperature", "degC", 0.2, 0.0),
    "resp": ("respiration rate", "rpm", 2.0, 0.0),
}
_RANGES = {"hr": (0, 350), "spo2": (0, 100), "sys": (0, 300), "dia": (0, 250), "temp": (20, 45),
           "resp": (0, 150)}
_ITEM = re.compile(r"^\s*([A-Za-z0-9]+)\s*[=:]\s*([0-9.]+)(?:\s*/\s*([0-9.]+))?\s*$")


class BadVitals(UsageError):
    reason = "bad-vitals"


def parse_vitals(text: str, what: str) -> dict[str, float]:
    """``hr=80,spo2=97,nibp=120/80,temp=37.0,resp=15`` -> {"hr": 80.0, ..., "sys": 120.0, "dia": 80.0}."""
    values: dict[str, float] = {}
    for part in (p for p in re.split(r"[,;]", text) if p.strip()):
        m = _ITEM.match(part)
        if m is None:
            raise BadVitals(f"{what}: {part.strip()!r} is not NAME=VALUE (e.g. hr=80, nibp=120/80)")
        name, first, second = m.group(1).lower(), m.group(2), m.group(3)
        pairs = [("sys", first), ("dia", second)] if name == "nibp" else [(name, first)]
        if name == "nibp" and second is None:
            raise BadVitals(f"{what}: nibp is systolic/diastolic, e.g. nibp=120/80")
        if name != "nibp" and second is not None:
            raise BadVitals(f"{what}: {name} takes one value")
        for key, raw in pairs:
            if key not in PARAMETERS:
                raise BadVitals(f"{what}: unknown parameter {name!r} (hr, spo2, nibp, temp, resp)")
            try:
                value = float(raw)
            except ValueError as exc:
                raise BadVitals(f"{what}: {name}={raw!r} is not a number") from exc
            low, high = _RANGES[key]
            if not math.isfinite(value) or not low <= value <= high:
                raise BadVitals(f"{what}: {PARAMETERS[key][0]} {value:g} is outside {low}-{high} "
                                f"{PARAMETERS[key][1]}")
            if key in values:
                raise BadVitals(f"{what}: {name} is given twice")
            values[key] = value
    if not values:
        raise BadVitals(f"{what}: no values given")
    return values


def parse_tolerances(text: str, what: str = "--tolerance") -> dict[str, float]:
    """``hr=3,spo2=2,nibp=5,temp=0.1`` -> tolerances per parameter (``nibp`` sets systolic and diastolic)."""
    out: dict[str, float] = {}
    for part in (p for p in re.split(r"[,;]", text) if p.strip()):
        m = re.fullmatch(r"\s*([A-Za-z0-9]+)\s*[=:]\s*([0-9]+(?:\.[0-9]+)?)\s*", part)
        if m is None:
            raise BadVitals(f"{what}: {part.strip()!r} is not NAME=VALUE (e.g. hr=3, nibp=5, temp=0.2)")
        name, value = m.group(1).lower(), float(m.group(2))
        keys = ("sys", "dia") if name == "nibp" else (name,)
        if any(k not in PARAMETERS for k in keys) or not 0 <= value <= 100:
            raise BadVitals(f"{what}: {part.strip()!r}: a parameter (hr, spo2, nibp, temp, resp) and a "
                            "tolerance from 0 to 100 in its unit")
        out.update(dict.fromkeys(keys, value))
    if not out:
        raise BadVitals(f"{what}: no tolerance given")
    return out


@dataclass(frozen=True)
class Reading:
    parameter: str
    set_to: float
    displayed: float | None
    tolerance: float
    unit: str

    @property
    def checked(self) -> bool:
        return self.displayed is not None

    @property
    def within(self) -> bool | None:
        if self.displayed is None:
            return None
        return abs(self.displayed - self.set_to) <= self.tolerance + 1e-9

    def to_dict(self) -> dict[str, Any]:
        return {"parameter": self.parameter, "label": PARAMETERS[self.parameter][0], "set_to": self.set_to,
                "displayed": self.displayed, "tolerance": self.tolerance, "unit": self.unit,
                "within": self.within}


@dataclass(frozen=True)
class VitalsCheck:
    readings: tuple[Reading, ...]

    @property
    def mismatches(self) -> tuple[Reading, ...]:
        return tuple(r for r in self.readings if r.within is False)

    @property
    def unchecked(self) -> tuple[Reading, ...]:
        return tuple(r for r in self.readings if not r.checked)

    @property
    def outcome(self) -> str:
        """"tampering-suspected" | "within-tolerance" | "incomplete" (some parameter not entered)."""
        if self.mismatches:
            return "tampering-suspected"
        return "incomplete" if self.unchecked else "within-tolerance"

    def to_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "readings": [r.to_dict() for r in self.readings],
                "mismatches": [r.parameter for r in self.mismatches],
                "not_checked": [r.parameter for r in self.unchecked]}


def tolerance_for(parameter: str, set_to: float, overrides: Mapping[str, float] | None = None) -> float:
    if overrides and parameter in overrides:
        return float(overrides[parameter])
    _, _, absolute, relative = PARAMETERS[parameter]
    return max(absolute, relative * abs(set_to))


def compare(simulator: Mapping[str, float], displayed: Mapping[str, float],
            tolerances: Mapping[str, float] | None = None) -> VitalsCheck:
    extra = sorted(set(displayed) - set(simulator))
    if extra:
        raise BadVitals(f"displayed values without a simulator setting: {', '.join(extra)}")
    readings = tuple(Reading(p, simulator[p], displayed.get(p), tolerance_for(p, simulator[p], tolerances),
                             PARAMETERS[p][1]) for p in PARAMETERS if p in simulator)
    return VitalsCheck(readings)
