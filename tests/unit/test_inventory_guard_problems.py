"""The inventory refuses indicator addresses (network guard) and pasted private keys, each on its line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orchestrator.domain import netguard
from orchestrator.domain.netguard import DEFAULT_GUARD, NetworkGuard, install_guard
from tests.unit.test_inventory_problems import HEAD, host, located, problems

# A throwaway key generated for this test (ssh-keygen -t ed25519 -N ''), never used anywhere.
OPENSSH_KEY = """\
-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACBNgRCyXjzRPOC1NzO7rQUSwhnTLfmYBe3ukf9Rxqm4ZQAAAJhMY2XoTGNl
-----END OPENSSH PRIVATE KEY-----"""
BODY_LINE = "QyNTUxOQAAACBNgRCyXjzRPOC1NzO7rQUSwhnTLfmYBe3ukf9Rxqm4ZQAAAJhMY2XoTGNl"


@pytest.fixture
def fresh_guard() -> Iterator[None]:
    saved = netguard._current[0]
    netguard._current[0] = DEFAULT_GUARD
    yield
    netguard._current[0] = saved


@pytest.mark.parametrize("address", ["202.114.4.119", '"::ffff:202.114.4.119"', "3396469879"])
def test_an_ansible_host_in_the_indicator_network_is_refused_on_its_line(address: str) -> None:
    found = problems(host("bed01", address=address))
    assert (13, "indicator-address") in located(found)


def test_an_ansible_ssh_host_in_the_indicator_network_is_refused() -> None:
    found = problems(host("bed01", ansible_ssh_host="202.114.4.120"))
    assert (19, "indicator-address") in located(found)


def test_an_indicator_address_inside_ssh_options_is_refused() -> None:
    found = problems(host("bed01", ansible_ssh_common_args='"-o ProxyJump=service@202.114.4.7:22"'))
    assert (19, "indicator-address") in located(found)


def test_a_configured_indicator_network_is_refused_and_monitors_beside_it_are_not(fresh_guard: None) -> None:
    install_guard(NetworkGuard.with_indicator_maps(["127.114.9"]))
    hosts = host("bed01", address="127.114.9.119") + host("bed02", address="127.77.0.2", serial="S-2")
    found = problems(hosts)
    assert located(found) == {(13, "indicator-address")}


def test_private_key_text_in_the_key_file_field_is_refused_without_echoing_it() -> None:
    block = "|\n" + "".join(f"        {line}\n" for line in OPENSSH_KEY.splitlines())
    head = HEAD.replace("ansible_ssh_private_key_file: keys/fleet_ed25519",
                        f"ansible_ssh_private_key_file: {block}".rstrip("\n"))
    found = problems(host("bed01"), head=head)
    assert [(p.line, p.code) for p in found] == [(4, "secret-in-inventory")]  # not "no credential" too
    assert all(BODY_LINE[:20] not in p.message and "BEGIN" not in p.message for p in found)


@pytest.mark.parametrize("value", [
    '"MIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi6Y5TrNv8qv6HGz7Gx8cQwZ"',  # a DER (PEM body) key, one line
    '"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"',  # an OpenSSH key body
    '"PuTTY-User-Key-File-3: ssh-ed25519"',
])
def test_a_key_body_pasted_into_a_host_key_file_field_is_refused(value: str) -> None:
    found = problems(host("bed01", ansible_private_key_file=value))
    assert (19, "secret-in-inventory") in located(found)
    assert all(value.strip('"')[:12] not in p.message for p in found)


@pytest.mark.parametrize("path", [
    "keys/fleet_ed25519", "/srv/Cmspatch/Keys/NorthGeneral/IntensiveCare/Fleet2024", "~/.ssh/id_ed25519",
    "keys/3f8a9c0d1e2b4a5f6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f",
])
def test_a_key_file_path_is_not_mistaken_for_key_text(path: str) -> None:
    found = problems(host("bed01", ansible_ssh_private_key_file=f'"{path}"', model="CMS0000"))
    assert "secret-in-inventory" not in {p.code for p in found}
