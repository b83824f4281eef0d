"""An asset-register export (CSV) -> the monitors cmspatch should know about, and every problem at once.

A hospital's maintenance system exports its register as CSV: asset tag, manufacturer, model, serial,
location, sometimes an address. Headings differ per product and per language, so a ``ColumnMap`` says
which heading holds what; without one the common headings below are recognised.

Rules (each a stable ``code`` on a ``Problem`` with the register's file and line):

- A row is one of the six models when its model text, with blanks, hyphens, dots and slashes removed,
  contains CMS6000/6500/7000/8000/9000 or MN120/NM120 (BfArM writes NM-120 for the Epsimed MN-120).
  "Contec" in the manufacturer is not needed (registers often leave it empty or name a distributor).
- A Contec or Epsimed row whose model looks like a patient monitor (CMS + four digits, MN/NM + digits)
  but is none of the six is ``unknown-model``: a person must decide. Other rows (other manufacturers,
  Contec's pulse oximeters such as CMS50D) are ignored and counted by manufacturer.
- ``duplicate-serial``: two rows with one serial are both left out (which one is right is not ours to
  guess); ``missing-field`` for a unit without serial, site, ward or bed; ``bad-address`` and
  ``bad-mac``; ``indicator-address`` for an address in 202.114.4.0/24 (``domain.netguard``);
  ``duplicate-address``; ``secret-column`` when a heading looks like it holds passwords (its values are
  never read, so never echoed).
- A unit without a network address is marked for the hands-on path (``delivery: manual``).

Deliberately left out: no I/O. The caller reads the file (size-capped) and passes its text; the result
is values for ``inventory_writer``.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from orchestrator.domain.inventory_values import HOSTNAME_RE
from orchestrator.domain.netguard import current_guard
from orchestrator.errors import Problem, UsageError

FIELDS = ("asset_tag", "manufacturer", "model", "serial", "site", "ward", "bed", "address", "mac", "port",
          "name", "firmware")

# Headings recognised without a map (compared case-insensitively, blanks and punctuation ignored).
DEFAULT_HEADINGS: dict[str, tuple[str, ...]] = {
    "asset_tag": ("asset tag", "asset no", "asset number", "asset id", "inventory number", "inventory no",
                  "equipment id", "equipment no", "tag", "inventario", "inventarnummer"),
    "manufacturer": ("manufacturer", "make", "vendor", "brand", "produttore", "hersteller"),
    "model": ("model", "model name", "model number", "device model", "modello", "modell", "type"),
    "serial": ("serial", "serial number", "serial no", "s/n", "sn", "serial_number", "matricola",
               "seriennummer"),
    "site": ("site", "hospital", "facility", "campus", "building", "presidio", "standort"),
    "ward": ("ward", "department", "unit", "dept", "reparto", "station", "abteilung"),
    "bed": ("bed", "bed number", "room/bed", "bed no", "location", "letto", "bett"),
    "address": ("ip", "ip address", "ipv4", "ipv4 address", "network address", "indirizzo ip", "ip-adresse"),
    "mac": ("mac", "mac address", "mac-adresse", "indirizzo mac"),
    "port": ("ssh port", "service port"),
    "name": ("hostname", "host name", "device name"),
    "firmware": ("firmware", "firmware version", "software version", "sw version"),
}
SECRET_HEADING = re.compile(r"pass(word|wd)?|pwd|secret|\bpin\b|credential|kennwort", re.IGNORECASE)
_MONITOR = re.compile(r"CMS(6000|6500|7000|8000|9000)(?!\d)")
_EPSIMED = re.compile(r"(MN|NM)120(?!\d)")
_LOOKS_LIKE_MONITOR = re.compile(r"CMS\d{4}|(MN|NM)\d{2,4}")
_OURS = re.compile(r"CONTEC|EPSIMED")
_MAC = re.compile(r"^([0-9a-f]{2})([:-]?)([0-9a-f]{2})(?:\2([0-9a-f]{2})){4}$"
                  r"|^([0-9a-f]{4}\.){2}[0-9a-f]{4}$",
                  re.IGNORECASE)
MAX_ROWS = 200_000


def _squash(text: str) -> str:
    return re.sub(r"[\s\-_./]+", "", text).upper()


def _heading_key(text: str) -> str:
    return re.sub(r"[^a-z0-9/]+", " ", text.lower()).strip()


@dataclass(frozen=True)
class ColumnMap:
    """Which register heading holds each field (``None``: recognise the defaults), and values written
    for every imported networked unit (service login, key file, known_hosts)."""

    columns: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, str | int] = field(default_factory=dict)
    delimiter: str | None = None  # None: sniffed (',' ';' or tab; European exports use ';')

    def __post_init__(self) -> None:
        unknown = sorted(set(self.columns) - set(FIELDS))
        if unknown:
            raise UsageError(f"column map: unknown field(s) {', '.join(unknown)} "
                             f"(known: {', '.join(FIELDS)})", reason="bad-column-map")
        if self.delimiter is not None and self.delimiter not in (",", ";", "\t", "|"):
            raise UsageError(f"column map: delimiter must be , ; | or a tab, not {self.delimiter!r}",
                             reason="bad-column-map")


def normalise_model(manufacturer: str, model: str) -> str | None:
    """The inventory's model name for a register's spelling, or None when it is not one of the six."""
    text = _squash(f"{model}")
    if (m := _MONITOR.search(text)) is not None:
        return f"CMS{m.group(1)}"
    if _EPSIMED.search(text) is not None:
        return "MN-120"
    return None


@dataclass(frozen=True)
class Unit:
    """One monitor found in the register, ready for the inventory writer."""

    line: int
    model: str
    serial: str
    site: str
    ward: str
    bed: str
    address: str = ""
    mac: str = ""
    port: int | None = None
    asset_tag: str = ""
    firmware: str = ""
    name: str = ""  # the register's host name, if any; the writer makes one otherwise

    @property
    def hands_on(self) -> bool:
        return not self.address


@dataclass(frozen=True)
class RegisterImport:
    path: str
    rows: int
    units: tuple[Unit, ...]
    problems: tuple[Problem, ...]
    ignored: Mapping[str, int]  # manufacturer (or "(blank)") -> rows ignored as other devices
    columns: Mapping[str, str]  # field -> the heading it was read from

    @property
    def hands_on(self) -> int:
        return sum(1 for u in self.units if u.hands_on)

    def to_dict(self) -> dict[str, object]:
        return {"register": self.path, "rows": self.rows, "units": len(self.units),
                "hands_on": self.hands_on, "networked": len(self.units) - self.hands_on,
                "ignored": dict(self.ignored), "ignored_total": sum(self.ignored.values()),
                "columns": dict(self.columns),
                "problems": [{"file": p.file, "line": p.line, "code": p.code, "message": p.message}
                             for p in self.problems]}


def _resolve_columns(path: str, headings: list[str], cmap: ColumnMap, problems: list[Problem]
                     ) -> dict[str, int]:
    index = {_heading_key(h): i for i, h in enumerate(headings)}
    found: dict[str, int] = {}
    for name in FIELDS:
        wanted = cmap.columns.get(name)
        if wanted is not None:
            if _heading_key(wanted) in index:
                found[name] = index[_heading_key(wanted)]
            else:
                problems.append(Problem(path, 1, f"the column map names heading {wanted!r} for {name}, "
                                        "but the register has no such column", "missing-column"))
            continue
        for alias in DEFAULT_HEADINGS[name]:
            if alias in index and index[alias] not in found.values():
                found[name] = index[alias]
                break
    for i, heading in enumerate(headings):
        if SECRET_HEADING.search(heading) and i not in found.values():
            problems.append(Problem(path, 1, f"column {i + 1} ({heading!r}) looks like it holds passwords: "
                                    "remove it from the export; its values were not read", "secret-column"))
    for needed in ("model", "serial"):
        if needed not in found:
            problems.append(Problem(path, 1, f"no column for {needed}: name it in the column map (--map)",
                                    "missing-column"))
    return found


def _sniff(text: str, cmap: ColumnMap) -> str:
    if cmap.delimiter is not None:
        return cmap.delimiter
    first = text.split("\n", 1)[0]
    counts = {d: first.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _address(path: str, line: int, value: str, problems: list[Problem]) -> str | None:
    if not value:
        return ""
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        if not HOSTNAME_RE.fullmatch(value) or value.replace(".", "").isdigit():
            problems.append(Problem(path, line, f"address {value!r} is neither an IP address nor a host name",
                                    "bad-address"))
            return None
        return value
    if current_guard().forbidden(str(ip)) is not None:
        problems.append(Problem(path, line, f"address {ip} is in the indicator network 202.114.4.0/24: "
                                "a monitor there would be the backdoor's server; cmspatch never connects "
                                "to it", "indicator-address"))
        return None
    return ip.compressed


def _mac(path: str, line: int, value: str, problems: list[Problem]) -> str | None:
    if not value:
        return ""
    if not _MAC.match(value):
        problems.append(Problem(path, line, f"MAC address {value!r} is not six hex pairs", "bad-mac"))
        return None
    digits = re.sub(r"[^0-9a-f]", "", value.lower())
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


def read_register(text: str, path: str, cmap: ColumnMap | None = None) -> RegisterImport:
    """Parse a register export's text (already decoded). Never raises for a bad row: see the module doc."""
    cmap = cmap or ColumnMap()
    problems: list[Problem] = []
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_sniff(text, cmap))
    try:
        headings = next(reader)
    except StopIteration:
        raise UsageError(f"{path}: the register export is empty", reason="empty-register") from None
    except csv.Error as exc:
        raise UsageError(f"{path}:1: not a CSV file ({exc})", reason="bad-csv") from exc
    columns = _resolve_columns(path, headings, cmap, problems)
    units: list[Unit] = []
    ignored: Counter[str] = Counter()
    serials: dict[str, int] = {}
    addresses: dict[str, int] = {}
    duplicates: set[str] = set()
    rows = 0
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            problems.append(Problem(path, start, f"unreadable CSV row ({exc})", "bad-csv"))
            break
        line, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in row):
            continue
        rows += 1
        if rows > MAX_ROWS:
            raise UsageError(f"{path}: more than {MAX_ROWS} rows; split the export",
                             reason="register-too-large")
        if "model" not in columns or "serial" not in columns:
            continue

        def cell(name: str, row: list[str] = row) -> str:
            i = columns.get(name)
            return row[i].strip() if i is not None and i < len(row) else ""

        maker, model_text = cell("manufacturer"), cell("model")
        model = normalise_model(maker, model_text)
        if model is None:
            if _OURS.search(_squash(maker)) and _LOOKS_LIKE_MONITOR.search(_squash(model_text)):
                problems.append(Problem(path, line, f"{maker} model {model_text!r} is not one of CMS6000, "
                                        "CMS6500, CMS7000, CMS8000, CMS9000, MN-120: check the rating plate",
                                        "unknown-model"))
            else:
                ignored[maker or "(blank)"] += 1
            continue
        before = len(problems)
        serial = cell("serial")
        missing = [n for n in ("serial", "site", "ward", "bed") if not cell(n)]
        if missing:
            problems.append(Problem(path, line, f"{model} has no {', '.join(missing)}", "missing-field"))
        if serial:
            if serial in serials:
                duplicates.add(serial)
                problems.append(Problem(path, line, f"serial {serial} is also on line {serials[serial]}: "
                                        "both rows are left out until the register is corrected",
                                        "duplicate-serial"))
            else:
                serials[serial] = line
        address = _address(path, line, cell("address"), problems)
        if address:
            if address in addresses:
                problems.append(Problem(path, line, f"address {address} is also on line {addresses[address]}",
                                        "duplicate-address"))
            else:
                addresses[address] = line
        mac = _mac(path, line, cell("mac"), problems)
        port: int | None = None
        if cell("port"):
            if cell("port").isdigit() and 0 < int(cell("port")) < 65536:
                port = int(cell("port"))
            else:
                problems.append(Problem(path, line, f"port {cell('port')!r} is not 1-65535", "bad-port"))
        if len(problems) > before or address is None or mac is None:
            continue
        units.append(Unit(line=line, model=model, serial=serial, site=cell("site"), ward=cell("ward"),
                          bed=cell("bed"), address=address, mac=mac, port=port, asset_tag=cell("asset_tag"),
                          firmware=cell("firmware"), name=cell("name")))
    kept = tuple(u for u in units if u.serial not in duplicates)
    heading_of = {name: headings[i] for name, i in columns.items()}
    return RegisterImport(path, rows, kept, tuple(sorted(problems, key=lambda p: (p.line, p.code))),
                          dict(sorted(ignored.items())), heading_of)
