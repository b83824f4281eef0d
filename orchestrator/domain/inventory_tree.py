"""Read the shape of an Ansible YAML inventory from PyYAML's node tree, keeping a line for everything.

Why the node tree and not ``yaml.safe_load``: a loaded dict has forgotten its line numbers, and PyYAML
silently keeps the last of two identical mapping keys, which is exactly how a copy-pasted bed loses its
first definition. Walking the composed nodes lets us point at the line and catch duplicate keys.

This module only records structure (groups, children, hosts, and each variable as an unconverted node
with its line). Whether a value makes sense is ``inventory.py``'s business. Deliberately not supported:
Ansible host ranges (``bed[01:20]``), ``host:port`` host names and ``host_vars/``/``group_vars/``
directories: an inventory for medical devices should name each monitor explicitly, in one file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from orchestrator.domain.strict_load import INVENTORY, StrictLoadError, compose_yaml
from orchestrator.errors import Problem

NULL_TAG = "tag:yaml.org,2002:null"
MERGE_TAG = "tag:yaml.org,2002:merge"
HOST_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}")
# Walking budget: YAML aliases can make a small file describe an exponentially large tree. The file's
# size is capped before parsing (strict_load.INVENTORY), so without aliases this is rarely reached.
MAX_NODES = 50_000  # groups + hosts walked; a large fleet is a few thousand


@dataclass(frozen=True)
class Var:
    """One variable as written: where it was set, and its node (converted later)."""

    key: str
    node: Node
    line: int
    owner: str  # "group NAME" or "host NAME", for messages


@dataclass
class GroupDef:
    name: str
    line: int
    vars: dict[str, Var] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    parents: set[str] = field(default_factory=set)


@dataclass
class HostDef:
    name: str
    line: int  # where the host is first defined
    vars: dict[str, Var] = field(default_factory=dict)
    groups: list[str] = field(default_factory=list)  # groups that list it directly


@dataclass
class Tree:
    groups: dict[str, GroupDef]
    hosts: dict[str, HostDef]
    all_vars: list[Var]  # every variable definition, in file order (each is validated once)


def line_of(node: Node) -> int:
    return int(node.start_mark.line) + 1


def is_null(node: Node | None) -> bool:
    return node is None or (isinstance(node, ScalarNode) and node.tag == NULL_TAG)


def compose(text: str | bytes, filename: str, problems: list[Problem]) -> Node | None:
    """Compose the single YAML document; any refusal becomes a located problem.

    The strict loader's rules apply (``domain.strict_load``, limits ``INVENTORY``): size, UTF-8, nesting
    depth and alias count are checked before the node tree is built. Messages use PyYAML's
    ``problem``/``context`` only, never its snippet of the offending line: that line may hold a password.
    """
    try:
        return compose_yaml(text, filename, INVENTORY)
    except StrictLoadError as exc:
        where = f" (column {exc.column})" if exc.column and exc.reason == "yaml-syntax" else ""
        problems.append(Problem(filename, exc.line, f"{exc.detail}{where}", exc.reason))
    return None


class _Walker:
    def __init__(self, filename: str, problems: list[Problem]) -> None:
        self.filename = filename
        self.problems = problems
        self.groups: dict[str, GroupDef] = {}
        self.hosts: dict[str, HostDef] = {}
        self.all_vars: list[Var] = []
        self.budget = MAX_NODES
        self.stack: set[int] = set()  # ids of nodes being walked: an alias to an ancestor is a loop
        self.walked: set[int] = set()  # a node walked twice was reached through an alias
        self.aliased = False

    def problem(self, line: int, message: str, code: str) -> None:
        self.problems.append(Problem(self.filename, line, message, code))

    def spend(self, node: Node) -> bool:
        self.budget -= 1
        self.aliased = self.aliased or id(node) in self.walked
        self.walked.add(id(node))
        if self.budget == 0:
            how = " (counting what its YAML aliases repeat)" if self.aliased else ""
            self.problem(
                line_of(node),
                f"the inventory has more than {MAX_NODES} groups and monitors{how}; refusing to read "
                "further (split the fleet into one inventory per site)",
                "too-large",
            )
        return self.budget > 0

    def pairs(
        self, node: MappingNode, what: str, dup_code: str = "duplicate-key"
    ) -> list[tuple[str, Node, Node]]:
        """The key/value pairs of a mapping; merge keys (``<<: *x``) applied, duplicates reported."""
        out: list[tuple[str, Node, Node]] = []
        seen: dict[str, int] = {}
        merged: list[tuple[str, Node, Node]] = []
        for knode, vnode in node.value:
            if knode.tag == MERGE_TAG:
                merged.extend(self._merge_sources(vnode, what))
                continue
            if not isinstance(knode, ScalarNode) or is_null(knode):
                self.problem(line_of(knode), f"{what} has a key that is not a plain name", "bad-structure")
                continue
            name = str(knode.value)
            if name in seen:
                self.problem(
                    line_of(knode),
                    f"'{name}' is defined twice in {what} (first on line {seen[name]}); "
                    "YAML would silently keep only the second definition",
                    dup_code,
                )
                continue
            seen[name] = line_of(knode)
            out.append((name, knode, vnode))
        for name, knode, vnode in merged:  # explicit keys win over merged ones; the first merge source wins
            if name not in seen:
                seen[name] = line_of(knode)
                out.append((name, knode, vnode))
        return out

    def _merge_sources(self, vnode: Node, what: str) -> list[tuple[str, Node, Node]]:
        sources = vnode.value if isinstance(vnode, SequenceNode) else [vnode]
        out: list[tuple[str, Node, Node]] = []
        for src in sources:
            if not isinstance(src, MappingNode):
                self.problem(
                    line_of(src), f"{what}: a merge key (<<) must refer to a mapping", "bad-structure"
                )
                continue
            if id(src) in self.stack:
                self.problem(line_of(src), f"{what}: a YAML alias refers to itself", "bad-structure")
                continue
            self.stack.add(id(src))
            out.extend(self.pairs(src, what))
            self.stack.discard(id(src))
        return out

    def vars_into(self, node: Node, owner: str, into: dict[str, Var]) -> None:
        if is_null(node):
            return
        if not isinstance(node, MappingNode):
            self.problem(
                line_of(node), f"the vars of {owner} must be a mapping of name: value", "bad-structure"
            )
            return
        for key, knode, vnode in self.pairs(node, f"the vars of {owner}"):
            var = Var(key, vnode, line_of(knode), owner)
            self.all_vars.append(var)
            into[key] = var

    def group(self, name: str, node: Node | None, line: int, parent: str | None) -> None:
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = GroupDef(name, line)
        if parent is not None and parent != name:
            group.parents.add(parent)
            if name not in self.groups[parent].children:
                self.groups[parent].children.append(name)
        elif parent == name:
            self.problem(line, f"group '{name}' lists itself as a child", "group-cycle")
        if node is None or is_null(node) or not self.spend(node):
            return
        if not isinstance(node, MappingNode):
            self.problem(
                line_of(node),
                f"group '{name}' must be a mapping with hosts, vars or children",
                "bad-structure",
            )
            return
        if id(node) in self.stack:
            self.problem(line_of(node), f"group '{name}': a YAML alias refers to itself", "bad-structure")
            return
        self.stack.add(id(node))
        for key, knode, vnode in self.pairs(node, f"group '{name}'"):
            if key == "vars":
                self.vars_into(vnode, f"group '{name}'", group.vars)
            elif key == "hosts":
                self.hosts_of(group, vnode)
            elif key == "children":
                self.children_of(group, vnode)
            else:
                self.problem(
                    line_of(knode),
                    f"group '{name}' has an unexpected key '{key}'; only hosts, vars "
                    "and children are allowed (Ansible would ignore it)",
                    "unknown-group-key",
                )
        self.stack.discard(id(node))

    def children_of(self, group: GroupDef, node: Node) -> None:
        if is_null(node):
            return
        if not isinstance(node, MappingNode):
            self.problem(
                line_of(node),
                f"the children of group '{group.name}' must be a mapping of group names",
                "bad-structure",
            )
            return
        for key, knode, vnode in self.pairs(node, f"the children of group '{group.name}'"):
            self.group(key, vnode, line_of(knode), group.name)

    def hosts_of(self, group: GroupDef, node: Node) -> None:
        if is_null(node):
            return
        if not isinstance(node, MappingNode):
            self.problem(
                line_of(node),
                f"the hosts of group '{group.name}' must be a mapping of host names",
                "bad-structure",
            )
            return
        for key, knode, vnode in self.pairs(node, f"the hosts of group '{group.name}'", "duplicate-host"):
            if not self.spend(vnode):
                return
            host = self.hosts.get(key)
            if host is None:
                host = self.hosts[key] = HostDef(key, line_of(knode))
                if not HOST_NAME_RE.fullmatch(key):
                    # Names end up in --limit patterns, reports and file names: one plain word each.
                    self.problem(
                        line_of(knode),
                        f"host name {key!r} may only use letters, digits, '.', '-' and '_' "
                        "(ranges like bed[01:10] and host:port are not supported)",
                        "bad-host-name",
                    )
            if group.name not in host.groups:  # a host's few groups, not a group's many hosts: linear
                host.groups.append(group.name)
                group.hosts.append(key)
            if is_null(vnode):
                continue
            if not isinstance(vnode, MappingNode):
                self.problem(
                    line_of(vnode),
                    f"host '{key}' must be a mapping of name: value (or empty)",
                    "bad-structure",
                )
                continue
            fresh: dict[str, Var] = {}
            self.vars_into(vnode, f"host '{key}'", fresh)
            self._merge_host_vars(host, fresh, line_of(knode))

    def _merge_host_vars(self, host: HostDef, fresh: dict[str, Var], line: int) -> None:
        """A host listed in two groups is legal Ansible; giving it two different values for one
        variable is not something a person means (Ansible keeps whichever it reads last)."""
        for key, var in fresh.items():
            old = host.vars.get(key)
            if old is not None and _node_text(old.node) != _node_text(var.node):
                self.problem(
                    line,
                    f"host '{host.name}' is defined again with a different {key} (first on line "
                    f"{host.line}); define each monitor once and list it in other groups without vars",
                    "duplicate-host",
                )
            host.vars[key] = var


def _node_text(node: Node) -> object:
    if isinstance(node, ScalarNode):
        return (node.tag, node.value)
    return id(node)


def read_tree(root: Node, filename: str, problems: list[Problem]) -> Tree:
    """Groups and hosts of the inventory. Top-level keys are groups (normally just ``all``)."""
    walker = _Walker(filename, problems)
    walker.groups["all"] = GroupDef("all", line_of(root))
    if not isinstance(root, MappingNode):
        walker.problem(
            line_of(root), "an inventory must be a mapping whose top-level key is 'all'", "bad-structure"
        )
        return Tree(walker.groups, walker.hosts, walker.all_vars)
    for key, knode, vnode in walker.pairs(root, "the top level"):
        walker.group(key, vnode, line_of(knode), None if key == "all" else "all")
    return Tree(walker.groups, walker.hosts, walker.all_vars)
