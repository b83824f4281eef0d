"""CSV column ids and the small YAML file that renames, picks and orders them for a CMMS import.

A hospital's maintenance system (CMMS) imports a CSV with its own header names and often a fixed set of
columns. The mapping file lists our column ids in the order wanted, each with the header to write::

    # columns.yml (see orchestrator/exports/columns.example.yml)
    delimiter: ";"              # optional: "," (default) ";" "|" or "\\t"
    encoding: utf-8-sig         # optional: utf-8 (default) or utf-8-sig (a BOM, for Excel)
    columns:
      asset_tag: "Asset No."
      serial: "Serial Number"
      CVE-2025-0626: "Backdoor (monitor)"

Only the listed columns are written, in that order. An unknown id or a header used twice is refused
with its line number, so a typo cannot silently drop a column an import depends on.
Parsing is pure: it takes the file's text.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from orchestrator.domain.strict_load import COLUMNS, StrictLoadError, compose_yaml
from orchestrator.errors import ExportError
from orchestrator.exports.model import CVE_IDS

# id -> default header, in the default order
DEFAULT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("asset_tag", "asset_tag"),
    ("serial", "serial"),
    ("device", "device"),
    ("site", "site"),
    ("ward", "ward"),
    ("bed", "bed"),
    ("model", "model"),
    ("firmware_before", "firmware_before"),
    ("firmware_after", "firmware_after"),
    ("firmware_after_by", "firmware_after_by"),  # "technician NAME" when a person read it, else empty
    ("package_sha256", "package_sha256"),
    ("signers", "signers"),
    ("campaign", "campaign"),
    ("wave", "wave"),
    ("state", "state"),
    ("outcome", "outcome"),
    ("reason", "reason"),
    *((cve, cve) for cve in CVE_IDS),
    ("evidence_level", "evidence_level"),  # how the verdicts were established: the weakest of them
    ("verified_at", "verified_at"),
    ("operator", "operator"),
    ("approver", "approver"),
    ("technician", "technician"),
    ("delivery", "delivery"),
    ("containment", "containment"),
    ("contained_by", "contained_by"),
    ("vitals", "vitals"),
    ("survey_status", "survey_status"),
    ("observed", "observed"),
    ("chain_head", "chain_head"),
)
COLUMN_IDS: frozenset[str] = frozenset(cid for cid, _ in DEFAULT_COLUMNS)
DELIMITERS: frozenset[str] = frozenset({",", ";", "\t", "|"})
ENCODINGS: frozenset[str] = frozenset({"utf-8", "utf-8-sig"})


@dataclass(frozen=True)
class ColumnMap:
    columns: tuple[tuple[str, str], ...] = DEFAULT_COLUMNS  # (id, header)
    delimiter: str = ","
    encoding: str = "utf-8"


def _refuse(filename: str, line: int, message: str) -> ExportError:
    where = f"{filename}:{line}" if line else filename
    return ExportError(f"{where}: {message}", reason="columns-invalid")


def parse_columns(text: str | bytes, filename: str = "columns.yml") -> ColumnMap:
    """Read a column mapping file; raises ``ExportError(reason="columns-invalid")`` with file:line.

    The file goes through the strict loader (size, UTF-8, depth, no aliases); a top-level key given
    twice is refused like a column given twice."""
    try:
        root = compose_yaml(text, filename, COLUMNS)
    except StrictLoadError as exc:
        raise _refuse(filename, exc.line, f"{exc.detail} ({exc.reason})") from exc
    if not isinstance(root, yaml.MappingNode):
        raise _refuse(filename, 1, "must be a mapping with a 'columns' key")
    delimiter, encoding = ",", "utf-8"
    columns: list[tuple[str, str]] | None = None
    seen: dict[str, int] = {}
    for key_node, value_node in root.value:
        key, line = str(key_node.value), key_node.start_mark.line + 1
        if key in seen:
            raise _refuse(filename, line, f"{key!r} is given twice (first on line {seen[key]}; "
                          "duplicate-key)")
        seen[key] = line
        if key == "delimiter":
            delimiter = str(value_node.value).replace("\\t", "\t")
            if not isinstance(value_node, yaml.ScalarNode) or delimiter not in DELIMITERS:
                raise _refuse(filename, line, "delimiter must be one of , ; | or \\t")
        elif key == "encoding":
            encoding = str(value_node.value).lower()
            if not isinstance(value_node, yaml.ScalarNode) or encoding not in ENCODINGS:
                raise _refuse(filename, line, "encoding must be utf-8 or utf-8-sig")
        elif key == "columns":
            columns = _columns(value_node, filename)
        else:
            raise _refuse(
                filename, line, f"unknown key {key!r} (expected columns, delimiter, encoding)"
            )
    if not columns:
        raise _refuse(filename, 0, "no columns listed under 'columns'")
    return ColumnMap(columns=tuple(columns), delimiter=delimiter, encoding=encoding)


def _columns(node: yaml.Node, filename: str) -> list[tuple[str, str]]:
    if not isinstance(node, yaml.MappingNode):
        raise _refuse(filename, node.start_mark.line + 1, "'columns' must map column ids to header names")
    result: list[tuple[str, str]] = []
    seen_ids: set[str] = set()
    seen_headers: set[str] = set()
    for key_node, value_node in node.value:
        cid, line = str(key_node.value), key_node.start_mark.line + 1
        if cid not in COLUMN_IDS:
            raise _refuse(
                filename, line, f"unknown column {cid!r}; known: {', '.join(c for c, _ in DEFAULT_COLUMNS)}"
            )
        if not isinstance(value_node, yaml.ScalarNode):
            raise _refuse(filename, line, f"the header for {cid!r} must be text")
        header = str(value_node.value) if value_node.value not in ("", "~", "null") else cid
        if cid in seen_ids:
            raise _refuse(filename, line, f"column {cid!r} is listed twice")
        if header in seen_headers:
            raise _refuse(filename, line, f"header {header!r} is used twice")
        seen_ids.add(cid)
        seen_headers.add(header)
        result.append((cid, header))
    return result
