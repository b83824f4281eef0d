"""The official CSAF 2.0 JSON schema and the FIRST CVSS schemas it references, vendored (see README.md).

``csaf_validator()`` resolves every ``$ref`` from these files through a ``referencing`` registry, so
validating a CSAF document never fetches anything over the network (an unknown reference raises
instead). Reading these files is reading the package's own data, not user input.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

CSAF_SCHEMA = "csaf_json_schema.json"
CSAF_SCHEMA_ID = "https://docs.oasis-open.org/csaf/csaf/v2.0/csaf_json_schema.json"
# file -> the URIs it is referenced by (the CSAF schema's $ref, and the file's own id with its date)
CVSS_SCHEMAS: dict[str, tuple[str, ...]] = {
    "cvss-v2.0.json": (
        "https://www.first.org/cvss/cvss-v2.0.json",
        "https://www.first.org/cvss/cvss-v2.0.json?20170531",
    ),
    "cvss-v3.0.json": (
        "https://www.first.org/cvss/cvss-v3.0.json",
        "https://www.first.org/cvss/cvss-v3.0.json?20170531",
    ),
    "cvss-v3.1.json": (
        "https://www.first.org/cvss/cvss-v3.1.json",
        "https://www.first.org/cvss/cvss-v3.1.json?20211103",
    ),
}
# SHA-256 of the files as published (checked by the tests, so an edit cannot pass unnoticed)
SHA256: dict[str, str] = {
    "csaf_json_schema.json": "29c114b35b0a30831f1674f2ab8b3ed9b2890cfeaa63b924ac6ed9d70ef44262",
    "cvss-v2.0.json": "cd1a7c0815b7a47dc12fb7dded10622b96d562841f7bc6d2d8765c5d937a28f2",
    "cvss-v3.0.json": "b2b587e5dfa6d9a4be89e25cb593df04f14e7ffbe8fe5b167ceee17b6097d919",
    "cvss-v3.1.json": "77ff3df106e4588e2bb5c9cf0237f962c62d35c5002443c4bf7cc7ca16ee171f",
}


def schema_bytes(name: str) -> bytes:
    return resources.files(__name__).joinpath(name).read_bytes()


def load(name: str) -> dict[str, Any]:
    doc = json.loads(schema_bytes(name))
    assert isinstance(doc, dict)
    return doc


@cache
def csaf_validator() -> Any:
    """A Draft 2020-12 validator for CSAF 2.0 with format checking, resolving $refs offline only."""
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4, DRAFT7

    def retrieve(uri: str) -> Resource[Any]:
        # referencing calls this only for URIs not in the registry: refuse rather than fetch.
        raise LookupError(f"schema reference {uri} is not vendored; refusing to fetch it")

    registry: Registry[Any] = Registry(retrieve=retrieve)  # type: ignore[call-arg]
    for name, uris in CVSS_SCHEMAS.items():
        contents = load(name)
        spec = DRAFT7 if "v3.1" in name else DRAFT4
        resource = spec.create_resource(contents)
        registry = registry.with_resources((uri, resource) for uri in uris)
    schema = load(CSAF_SCHEMA)
    return Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())


EXPORT_SCHEMA = "cmspatch-export-2.json"  # our own: the JSON export's shape, one file per format version


@cache
def export_validator() -> Any:
    """A Draft 2020-12 validator for cmspatch's JSON export (``exports.json``), offline."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load(EXPORT_SCHEMA))
