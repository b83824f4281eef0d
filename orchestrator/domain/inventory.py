"""The inventory: Ansible-compatible YAML text in, typed ``Device`` records out, or every problem at once.

Pure: ``parse_inventory`` takes the text and the directory relative paths are resolved against, and does
no I/O (``adapters.inventory_file.load_inventory`` reads the file). The same file is meant to work with
``ansible-playbook -i``, so variables inherit the way Ansible does it: ``all``, then groups by depth
(parents before children), then by ``ansible_group_priority`` and name, then the host's own vars.

A bad inventory is never half-loaded: either every host becomes a ``Device`` or an ``InventoryError``
lists every problem with its file and line, so a biomedical engineer fixes the file in one pass.
Left out on purpose: Jinja templating of values (``{{ ... }}`` is taken literally and usually fails
validation, which is what we want for addresses and keys), vault decryption, inventory plugins.
"""

from __future__ import annotations

import ipaddress
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field

from orchestrator.domain.devices import CredentialRef, DeliveryPath, Device
from orchestrator.domain.inventory_limit import select as _select
from orchestrator.domain.inventory_tree import GroupDef, HostDef, Tree, Var, compose, read_tree
from orchestrator.domain.inventory_values import INVALID, KEY_FILE_KEYS, PASSWORD_KEYS, Verdict, judge
from orchestrator.domain.profile import DEFAULT_PROFILE, NAME_RE
from orchestrator.errors import InventoryError, Problem, UsageError

__all__ = ["Inventory", "parse_inventory"]

REQUIRED = ("model", "serial", "site", "ward", "bed")
REQUIRED_NETWORK = (
    ("ansible_host", "ansible_host (the monitor's address)"),
    ("ansible_user", "ansible_user (the service login)"),
    ("host_key", "host_key (the pinned SSH host key fingerprint)"),
)


@dataclass(frozen=True)
class Inventory:
    """The monitors of one inventory file, in file order.

    ``known_hosts`` is read from ``all``'s vars only: one pin file per inventory, so that the SSH
    transport and Ansible (``UserKnownHostsFile``) check against the same file.
    """

    devices: tuple[Device, ...]
    path: str  # the inventory file (absolute when loaded from disk)
    known_hosts: str | None = None  # absolute path from ``cmspatch_known_hosts``
    group_names: frozenset[str] = field(default=frozenset({"all", "ungrouped"}))  # for --limit

    def device(self, name: str) -> Device:
        for device in self.devices:
            if device.name == name:
                return device
        raise UsageError(f"no monitor named '{name}' in {self.path}", reason="unknown-device")

    def select(self, pattern: str | None) -> tuple[Device, ...]:
        """Devices matching an Ansible ``--limit`` pattern (see ``inventory_limit``), in file order."""
        return _select(self.devices, self.group_names, pattern)


def resolve(base_dir: str, path: str) -> str:
    """A path from the inventory, relative to the inventory's directory (``~`` is left to the caller)."""
    if path.startswith("~") or posixpath.isabs(path):
        return path
    return posixpath.normpath(posixpath.join(base_dir, path))


def parse_inventory(text: str, filename: str, *, base_dir: str) -> Inventory:
    """Parse an inventory; raise ``InventoryError`` with every problem found (sorted by line)."""
    problems: list[Problem] = []
    root = compose(text, filename, problems)
    if root is None:
        if not problems:
            problems.append(
                Problem(filename, 0, "the inventory is empty: it defines no monitors", "no-devices")
            )
        raise InventoryError(problems)
    tree = read_tree(root, filename, problems)
    if any(p.code == "too-large" for p in problems):  # the tree was cut short: its hosts mean nothing
        raise InventoryError(_unique_sorted(problems))
    for host in tree.hosts.values():
        if host.name in tree.groups:
            problems.append(
                Problem(
                    filename,
                    host.line,
                    f"'{host.name}' is both a host and a group; --limit could not tell them apart",
                    "name-clash",
                )
            )
    verdicts: dict[int, Verdict] = {}
    for var in tree.all_vars:
        verdict = verdicts[id(var)] = judge(var)
        if verdict.value is INVALID:
            problems.append(Problem(filename, var.line, verdict.message, verdict.code))
    builder = _Builder(tree, verdicts, filename, base_dir, problems)
    devices = builder.devices()
    if not tree.hosts and not problems:
        problems.append(Problem(filename, 0, "the inventory defines no monitors (no hosts)", "no-devices"))
    if problems:
        raise InventoryError(_unique_sorted(problems))
    return Inventory(
        devices=devices,
        path=filename,
        known_hosts=builder.known_hosts(),
        group_names=frozenset(tree.groups) | {"all", "ungrouped"},  # Ansible always has both
    )


def _unique_sorted(problems: Iterable[Problem]) -> list[Problem]:
    seen: dict[tuple[int, str, str], Problem] = {}
    for p in problems:
        seen.setdefault((p.line, p.code, p.message), p)
    return sorted(seen.values(), key=lambda p: p.line)


class _Builder:
    def __init__(
        self, tree: Tree, verdicts: dict[int, Verdict], filename: str, base_dir: str, problems: list[Problem]
    ) -> None:
        self.tree, self.verdicts, self.filename, self.base_dir = tree, verdicts, filename, base_dir
        self.problems = problems
        self.depth: dict[str, int] = {}
        self.endpoints: dict[tuple[str, int], HostDef] = {}
        self.serials: dict[str, HostDef] = {}
        for name in tree.groups:
            self._depth(name, set())

    def problem(self, line: int, message: str, code: str) -> None:
        self.problems.append(Problem(self.filename, line, message, code))

    def _depth(self, name: str, visiting: set[str]) -> int:
        """Longest path from ``all``, as Ansible computes it; a cycle is reported, not followed."""
        if name in self.depth:
            return self.depth[name]
        group = self.tree.groups[name]
        if name in visiting:
            self.problem(
                group.line, f"group '{name}' is its own ancestor (a loop of children)", "group-cycle"
            )
            return 0
        if name == "all" and group.parents:
            self.problem(group.line, "group 'all' cannot be the child of another group", "group-cycle")
        visiting.add(name)
        parents = [self._depth(p, visiting) for p in sorted(group.parents) if p != "all" or name != "all"]
        visiting.discard(name)
        self.depth[name] = 0 if name == "all" else max(parents, default=0) + 1
        return self.depth[name]

    def ancestors(self, names: Iterable[str]) -> set[str]:
        out: set[str] = {"all"}
        todo = list(names)
        while todo:
            name = todo.pop()
            if name not in out:
                out.add(name)
                todo.extend(self.tree.groups[name].parents)
        return out

    def value(self, var: Var | None) -> object:
        return None if var is None else self.verdicts[id(var)].value

    def priority(self, group: GroupDef) -> int:
        value = self.value(group.vars.get("ansible_group_priority"))
        return int(value) if isinstance(value, int | str) and str(value).strip().isdigit() else 1

    def merged_vars(self, host: HostDef, groups: set[str]) -> dict[str, Var]:
        order = sorted(
            (self.tree.groups[g] for g in groups),
            key=lambda g: (self.depth.get(g.name, 0), self.priority(g), g.name),
        )
        merged: dict[str, Var] = {}
        for group in order:
            merged.update(group.vars)
        merged.update(host.vars)
        return merged

    def known_hosts(self) -> str | None:
        value = self.value(self.tree.groups["all"].vars.get("cmspatch_known_hosts"))
        return resolve(self.base_dir, value) if isinstance(value, str) else None

    def devices(self) -> tuple[Device, ...]:
        built = [self.device(host) for host in self.tree.hosts.values()]
        return tuple(d for d in built if d is not None)

    def device(self, host: HostDef) -> Device | None:
        groups = self.ancestors(host.groups)
        if groups == {"all"}:
            groups.add("ungrouped")
            self.tree.groups.setdefault("ungrouped", GroupDef("ungrouped", 0))
            self.depth.setdefault("ungrouped", 1)
        merged = self.merged_vars(host, groups - {"ungrouped"})
        values = {key: self.value(var) for key, var in merged.items()}
        if values.get("ansible_user") is None and values.get("ansible_ssh_user") is not None:
            values["ansible_user"] = values["ansible_ssh_user"]  # the older spelling Ansible still honours
        ok = all(v is not INVALID for v in values.values())
        # ``serial_number`` is the key to write: Ansible reserves ``serial`` (a play keyword) and warns once
        # per host for it. ``serial`` is still read, so inventories written before keep working.
        number, old = values.get("serial_number"), values.get("serial")
        if number is not None:
            if old is not None and old is not INVALID and number is not INVALID and old != number:
                ok = False
                self.problem(host.line, f"host '{host.name}' has serial_number {number!r} and serial "
                             f"{old!r}: keep serial_number only", "conflicting-field")
            values["serial"] = number
        given = values.get("delivery")
        delivery = given if isinstance(given, DeliveryPath) else DeliveryPath.SSH  # ssh unless said otherwise
        # With a mistyped delivery we cannot know which fields it needs: its own problem says enough.
        network = delivery is not DeliveryPath.MANUAL and given is not INVALID
        text = {key: v for key, v in values.items() if isinstance(v, str)}
        for key in REQUIRED:
            if values.get(key) is None:
                ok = False
                shown = "serial_number" if key == "serial" else key
                self.problem(host.line, f"host '{host.name}' has no {shown}", "missing-field")
        for key, label in REQUIRED_NETWORK if network else ():
            # A monitor's key may be pinned in the inventory's known_hosts instead (``enroll`` records it
            # there after a person compared fingerprints); the SSH adapter refuses one pinned nowhere.
            if key == "host_key" and self.known_hosts() is not None:
                continue
            if values.get(key) is None:
                ok = False
                self.problem(
                    host.line, f"host '{host.name}' (delivery {delivery}) has no {label}", "missing-field"
                )
        key_file = text.get("ansible_ssh_private_key_file") or text.get("ansible_private_key_file")
        agent = values.get("cmspatch_ssh_agent") is True
        # A password or a key file that is itself refused is already a problem: not "no credential" too.
        reported = any(k in merged for k in PASSWORD_KEYS) or any(values.get(k) is INVALID
                                                                   for k in KEY_FILE_KEYS)
        if network and not key_file and not agent and not reported:
            ok = False
            self.problem(
                host.line,
                f"host '{host.name}' (delivery {delivery}) has no credential: set "
                "ansible_ssh_private_key_file or cmspatch_ssh_agent: true",
                "missing-credential",
            )
        port_value = values.get("ansible_port")
        port = port_value if isinstance(port_value, int) else 22
        claimed = (
            text.get("ansible_host")
            if delivery is not DeliveryPath.MANUAL and port_value is not INVALID
            else None
        )
        self._claim(host, claimed, port, text.get("serial"))
        if not ok:
            return None
        return Device(
            name=host.name,
            model=text["model"],
            serial=text["serial"],
            site=text["site"],
            ward=text["ward"],
            bed=text["bed"],
            address=text.get("ansible_host", ""),
            port=port,
            user=text.get("ansible_user", ""),
            credential=CredentialRef(
                key_file=resolve(self.base_dir, key_file) if key_file else None, agent=agent
            ),
            host_key=text.get("host_key"),
            delivery=delivery,
            asset_tag=text.get("asset_tag"),
            firmware=text.get("firmware"),
            groups=tuple(sorted(groups, key=lambda g: (self.depth.get(g, 0), g))),
            vars={key: v for key, v in values.items() if key not in PASSWORD_KEYS},
            source_line=host.line,
            profile=_profile_ref(self.base_dir, text.get("cmspatch_profile")),
        )

    def _claim(self, host: HostDef, address: str | None, port: int, serial: str | None) -> None:
        """Two monitors on one address:port, or sharing a serial, is a copy-paste slip: refuse it.

        Checked on every host whose address or serial is itself valid, even when the host has other
        problems, so that all problems show up in one pass."""
        if address is not None:
            endpoint = (_normal_address(address), port)
            first = self.endpoints.setdefault(endpoint, host)
            if first is not host:
                self.problem(
                    host.line,
                    f"host '{host.name}' uses {address}:{port}, "
                    f"already used by host '{first.name}' (line {first.line})",
                    "duplicate-address",
                )
        if serial is not None:
            other = self.serials.setdefault(serial, host)
            if other is not host:
                self.problem(
                    host.line,
                    f"host '{host.name}' has serial {serial}, already "
                    f"used by host '{other.name}' (line {other.line})",
                    "duplicate-serial",
                )


def _profile_ref(base_dir: str, ref: str | None) -> str:
    """``cmspatch_profile``: a shipped profile's name as given, a file relative to the inventory."""
    if ref is None:
        return DEFAULT_PROFILE
    return ref if NAME_RE.fullmatch(ref) else resolve(base_dir, ref)


def _normal_address(address: str) -> str:
    try:
        return ipaddress.ip_address(address).compressed
    except ValueError:
        return address.rstrip(".").lower()
