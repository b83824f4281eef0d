"""A register export as a maintenance system writes one: other manufacturers' devices, the six models
spelled every way registers spell them, units without an address, and (on request) duplicate serials."""

from __future__ import annotations

import csv
import io
import random

SPELLINGS = {
    "CMS8000": ("CMS8000", "CMS-8000", "CMS 8000", "cms8000", "Contec CMS 8000", "CMS8000 Patient Monitor"),
    "CMS6000": ("CMS6000", "CMS-6000"), "CMS6500": ("CMS 6500",), "CMS7000": ("CMS-7000",),
    "CMS9000": ("CMS9000", "CMS 9000"), "MN-120": ("MN-120", "NM-120", "Epsimed MN120", "NM 120"),
}
OTHERS = (("Philips", "IntelliVue MX450"), ("GE Healthcare", "CARESCAPE B450"), ("Mindray", "BeneView T5"),
          ("B. Braun", "Perfusor Space"), ("Contec", "CMS50D"), ("Draeger", "Infinity Delta"))
HEADINGS = ["Asset No.", "Manufacturer", "Model", "Serial Number", "Site", "Department", "Location",
            "IP Address", "MAC Address", "Comments"]


def register_csv(rows: int = 300, *, monitors: int = 60, duplicate_serials: int = 2, seed: int = 7,
                 delimiter: str = ",") -> tuple[str, dict[str, int]]:
    """(CSV text, facts) where facts counts what a correct import must find."""
    rnd = random.Random(seed)
    out = io.StringIO()
    w = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    w.writerow(HEADINGS)
    facts = {"monitors": 0, "others": 0, "hands_on": 0, "duplicates": duplicate_serials}
    models = list(SPELLINGS)
    serials: list[str] = []
    for i in range(rows):
        if i < monitors:
            model = models[i % len(models)]
            spelled = rnd.choice(SPELLINGS[model])
            makers = ("Contec", "Contec Medical Systems", "", "CONTEC")
            maker = rnd.choice(makers) if model != "MN-120" else "Epsimed"
            serial = f"SN-{model.replace('-', '')}-{i:05d}"
            if i >= monitors - duplicate_serials:
                serial = serials[i - (monitors - duplicate_serials)]  # a copy-paste slip in the register
            serials.append(serial)
            networked = i % 4 != 0
            address = f"127.66.{i // 250}.{i % 250 + 1}" if networked else ""
            mac = f"00:1a:2b:{i // 256:02x}:{i % 256:02x}:01" if networked else ""
            site = ("North General", "South Clinic")[i % 2]
            ward = ("ICU", "Cardiology", "Emergency")[i % 3]
            w.writerow([f"BME-{i:06d}", maker, spelled, serial, site, ward, f"Bed {i % 20 + 1:02d}", address,
                        mac, ""])
            facts["monitors"] += 1
            facts["hands_on"] += 0 if networked else 1
        else:
            maker, model = OTHERS[i % len(OTHERS)]
            w.writerow([f"BME-{i:06d}", maker, model, f"X{i:07d}", "North General", "ICU", "", "", "",
                        "spare"])
            facts["others"] += 1
    return out.getvalue(), facts
