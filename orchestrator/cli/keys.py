"""``cmspatch keys``: create signing keys and keep the trust policy's key list.

    cmspatch keys new --role hospital-biomed --out biomed.key [--algorithm ed25519] [--policy policy.yaml]
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

from orchestrator.adapters.trust_files import atomic_write, write_private_key
from orchestrator.domain.trust.policy import MAX_POLICY_BYTES, ROLES, TrustPolicy, parse_policy, render_policy
from orchestrator.domain.trust.signatures import GENERATE_CHOICES, generate_key
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
    data = path.read_bytes()
    if len(data) > MAX_POLICY_BYTES:
        raise UsageError(f"{path}: larger than {MAX_POLICY_BYTES} bytes; not a policy")
    return parse_policy(data, str(path))


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
