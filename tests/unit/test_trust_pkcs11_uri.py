"""RFC 7512 PKCS#11 URIs: what picks the token and the key, percent-encoding, and a PIN never allowed in."""

from __future__ import annotations

import dataclasses

import pytest

from orchestrator.domain.trust.pkcs11_uri import parse_pkcs11_uri
from orchestrator.errors import UsageError


def test_token_object_and_module_are_read_and_percent_decoded() -> None:
    uri = parse_pkcs11_uri("pkcs11:token=Hospital%20Biomed;object=biomed%2D2026;id=%01%FF"
                           "?module-path=/usr/lib/softhsm/libsofthsm2.so")
    assert (uri.token, uri.object, uri.id) == ("Hospital Biomed", "biomed-2026", b"\x01\xff")
    assert uri.module_path == "/usr/lib/softhsm/libsofthsm2.so"


def test_rendering_round_trips_without_the_module() -> None:
    uri = parse_pkcs11_uri("pkcs11:token=A%3BB%20C;serial=0042;object=k%C3%A9y;type=private;id=%00%10;"
                           "slot-id=7?module-name=softhsm2")
    assert uri.token == "A;B C" and uri.object == "kéy"
    assert uri.module_name == "softhsm2" and "module" not in uri.render()
    assert parse_pkcs11_uri(uri.render()) == dataclasses.replace(uri, module_name=None)


@pytest.mark.parametrize("attribute", ["pin-value=1234", "pin-source=file:/tmp/pin"])
def test_a_pin_in_the_uri_is_refused_in_path_or_query(attribute: str) -> None:
    for uri in (f"pkcs11:token=t;object=k;{attribute}", f"pkcs11:token=t;object=k?{attribute}"):
        with pytest.raises(UsageError) as caught:
            parse_pkcs11_uri(uri)
        assert caught.value.reason == "pkcs11-pin-in-uri" and "1234" not in caught.value.message


@pytest.mark.parametrize("uri", [
    "pkcs12:token=t;object=k",            # another scheme
    "pkcs11:token=t;object=k;token=u",    # twice
    "pkcs11:token=t;object=k;colour=red",  # unknown attribute
    "pkcs11:token=t;object=k%2",          # truncated escape
    "pkcs11:token=t;object=k%zz",         # not hex
    "pkcs11:token=t t;object=k",          # a raw space
    "pkcs11:token=t;object=k;type=secret-key",
    "pkcs11:token=t;object=k;slot-id=one",
    "pkcs11:object=k",                    # which token?
    "pkcs11:token=t",                     # which key?
    "pkcs11:token=t;object=%FF",          # not UTF-8
    "pkcs11:token=t;object=k?token=u",    # a path attribute in the query
    "pkcs11:token=t;object",              # not NAME=VALUE
])
def test_uris_that_cannot_pick_one_key_are_refused(uri: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_pkcs11_uri(uri)
    assert caught.value.reason == "pkcs11-uri-invalid"
