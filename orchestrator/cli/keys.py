"""``cmspatch keys``: create signing keys and keep the trust policy's key list.

    cmspatch keys new --role hospital-biomed --out biomed.key [--algorithm ed25519] [--policy policy.yaml]
    cmspatch keys add vendor.pub --role vendor --policy policy.yaml [--owner "Contec"]
    cmspatch keys list --policy policy.yaml [--json]
    cmspatch keys revoke KEYID --policy policy.yaml --reason "laptop lost"

``new`` writes the private key (PKCS#8 PEM, mode 0600, atomically, never over an existing file) and its
public half next to it (``.pub``), prints the key id, and with ``--policy`` adds the public key to the
policy (creating it with the default rules if it does not exist). The policy is checked before anything
is written, so a refusal leaves no key behind.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.adapters.trust_files import atomic_write, read_bounded, write_private_key
from orchestrator.domain.trust.policy import MAX_POLICY_BYTES, ROLES, TrustPolicy, parse_policy, render_policy
from orchestrator.domain.trust.signatures import GENERATE_CHOICES, generate_key, load_public_key
from orchestrator.errors import ExitCode, UsageError


def register(sub: argparse._SubParsersAction[Any]) -> None:
    keys = sub.add_parser("keys", help="create signing keys and manage the trust policy's keys")
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    new = actions.add_parser("new", help="create a signing key for a role")
    new.add_argument("--role", required=True, choices=ROLES)
    new.add_argument("--out", required=True, type=Path, help="private key file to create (mode 0600)")
    new.add_argument("--algorithm", default="ed25519", choices=tuple(GENERATE_CHOICES))
    new.add_argument("--policy", type=Path, help="add the public key to this policy (created if absent)")
    new.add_argument("--owner", default="", help="who holds the key, as the report should name them")
    new.add_argument("--json", action="store_true", help="print the result as JSON")
    new.set_defaults(func=cmd_new)

    add = actions.add_parser("add", help="add an existing public key (e.g. the vendor's) to a policy")
    add.add_argument("public_key", type=Path, help="PEM public key file")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--policy", required=True, type=Path, help="trust policy (created if absent)")
    add.add_argument("--owner", default="")
    add.set_defaults(func=cmd_add)

    show = actions.add_parser("list", help="list a policy's keys, roles, revocations and rules")
    show.add_argument("--policy", required=True, type=Path)
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=cmd_list)

    revoke = actions.add_parser("revoke", help="revoke a key in a policy (its signatures stop counting)")
    revoke.add_argument("keyid")
    revoke.add_argument("--policy", required=True, type=Path)
    revoke.add_argument("--reason", required=True)
    revoke.set_defaults(func=cmd_revoke)


def _load_policy(path: Path, *, missing_ok: bool) -> TrustPolicy:
    if not path.exists():
        if missing_ok:
            return TrustPolicy()
        raise UsageError(f"{path}: no such policy file")
    return parse_policy(read_bounded(path, MAX_POLICY_BYTES, "policy"), str(path))


def cmd_new(args: argparse.Namespace) -> int:
    out: Path = args.out
    pub = out.with_name(out.name + ".pub")
    for target in (out, pub):
        if target.exists():
            raise UsageError(f"{target} exists; refusing to overwrite a key")
    key = generate_key(args.algorithm)
    policy = None
    if args.policy is not None:
        policy = _load_policy(args.policy, missing_ok=True).with_key(key.public, args.role, args.owner)
    write_private_key(out, key)
    atomic_write(pub, key.public.pem.encode("ascii"), exclusive=True)
    if policy is not None:
        atomic_write(args.policy, render_policy(policy).encode("utf-8"))
    if args.json:
        print(json.dumps({"keyid": key.keyid, "role": args.role, "algorithm": key.public.algorithm.value,
                          "private_key": str(out), "public_key": str(pub),
                          "policy": str(args.policy) if args.policy else None}))
    else:
        print(key.keyid)
    return int(ExitCode.OK)


def cmd_revoke(args: argparse.Namespace) -> int:
    policy = _load_policy(args.policy, missing_ok=False)
    if policy.key(args.keyid) is None and policy.revocation(args.keyid) is None:
        raise UsageError(f"{args.keyid} is not a key of {args.policy}")
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    atomic_write(args.policy, render_policy(policy.with_revocation(args.keyid, args.reason, today)).encode())
    print(f"revoked {args.keyid}")
    return int(ExitCode.OK)


def cmd_add(args: argparse.Namespace) -> int:
    key = load_public_key(read_bounded(args.public_key, 64 * 1024, "public key"), source=str(args.public_key))
    policy = _load_policy(args.policy, missing_ok=True)
    if policy.key(key.keyid) is not None:
        raise UsageError(f"{key.keyid} is already in {args.policy} (one key, one role)")
    policy = policy.with_key(key, args.role, args.owner)
    atomic_write(args.policy, render_policy(policy).encode("utf-8"))
    print(key.keyid)
    return int(ExitCode.OK)


def cmd_list(args: argparse.Namespace) -> int:
    policy = _load_policy(args.policy, missing_ok=False)
    keys = [{"keyid": k.keyid, "role": k.role, "owner": k.owner, "algorithm": k.key.algorithm.value,
             "revoked": policy.revocation(k.keyid) is not None} for k in policy.keys]
    if args.json:
        rules = [{"name": r.name, "require": dict(r.require)} for r in policy.rules]
        print(json.dumps({"keys": keys, "revoked": [r.keyid for r in policy.revoked], "thresholds": rules}))
        return int(ExitCode.OK)
    for k in keys:
        state = "REVOKED" if k["revoked"] else "active"
        print(f"{k['keyid']}  {k['role']:<17} {k['algorithm']:<10} {state:<7} {k['owner']}")
    for rule in policy.rules:
        print(f"rule {rule.name}: {rule.describe()}")
    return int(ExitCode.OK)
