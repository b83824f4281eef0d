"""``cmspatch keys``: create signing keys and keep the trust policy's key list.

    cmspatch keys new --role hospital-biomed --out biomed.key [--algorithm ed25519] [--policy policy.yaml]
                      [--passphrase-file FILE | --passphrase-env NAME | --unencrypted]
    cmspatch keys new --role hospital-security --pkcs11 'pkcs11:token=T;object=security' --policy P
                      [--pkcs11-module /usr/lib/softhsm/libsofthsm2.so] [--pin-file FILE | --pin-env NAME]
    cmspatch keys add vendor.pub --role vendor --policy policy.yaml [--owner "Contec"]
    cmspatch keys list --policy policy.yaml [--json]
    cmspatch keys revoke KEYID --policy policy.yaml --reason "laptop lost"

``new`` writes the private key (PKCS#8 PEM, mode 0600, atomically, never over an existing file),
encrypted with a passphrase asked twice on the terminal, or read from ``--passphrase-file`` (first line;
the file must be readable by its owner only) or the variable ``--passphrase-env`` names -- never given on
the command line. ``--unencrypted`` writes it in the clear, and says so. With ``--pkcs11 URI`` the key
is made on the token (or found there, if the URI names one that exists) and never leaves it; the PIN
comes the same ways (``--pin-file``, ``--pin-env``, the prompt). ``new`` writes the public half next to
a key file (``.pub``), prints the key id, and with ``--policy`` adds the public key to the policy
(creating it with the default rules if it does not exist) with its custody: a key file, encrypted or
not, or the token's label and serial and the object's label (``keys list`` and ``package verify`` show
it). Rotation is ``keys new`` for the same role (another object on the token, another file) followed by
``keys revoke`` of the old key id; a lost token is revoked by its key id, which ``keys list`` pairs with
the token's serial. The policy is checked before anything is
written, so a refusal leaves no key behind.

``add_signer_flags`` / ``open_signer`` give ``package attest`` and ``package sign`` the same ways to
unlock a key: ``--key FILE`` or ``--key pkcs11:...``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator.adapters.trust_files import (
    SecretSource,
    atomic_write,
    load_signing_key,
    read_bounded,
    read_secret,
    write_private_key,
)
from orchestrator.domain.trust.pkcs11_uri import is_pkcs11_uri, parse_pkcs11_uri
from orchestrator.domain.trust.policy import (
    MAX_POLICY_BYTES,
    ROLES,
    Custody,
    TrustPolicy,
    parse_policy,
    render_policy,
)
from orchestrator.domain.trust.signatures import GENERATE_CHOICES, Signer, generate_key, load_public_key
from orchestrator.errors import ExitCode, UsageError


def add_secret_flags(parser: argparse.ArgumentParser, *, passphrase: bool = True) -> None:
    """Where a passphrase and a token PIN come from; never the secret itself on the command line."""
    group = parser.add_argument_group("unlocking the key (default: ask on the terminal)")
    if passphrase:
        group.add_argument("--passphrase-file", type=Path, metavar="FILE",
                           help="read the key file's passphrase from FILE's first line (mode 600)")
        group.add_argument("--passphrase-env", metavar="NAME",
                           help="read the passphrase from the environment variable NAME")
    group.add_argument("--pin-file", type=Path, metavar="FILE",
                       help="read the token PIN from FILE's first line (mode 600)")
    group.add_argument("--pin-env", metavar="NAME",
                       help="read the token PIN from the environment variable NAME")
    group.add_argument("--pkcs11-module", metavar="SO",
                       help="PKCS#11 module (default $CMSPATCH_PKCS11_MODULE, else the URI's module-path)")


def passphrase_source(args: argparse.Namespace) -> SecretSource:
    return SecretSource("passphrase", "--passphrase", getattr(args, "passphrase_file", None),
                        getattr(args, "passphrase_env", None))


def pin_source(args: argparse.Namespace) -> SecretSource:
    return SecretSource("PIN", "--pin", args.pin_file, args.pin_env)


@contextlib.contextmanager
def open_signer(key: str, args: argparse.Namespace) -> Iterator[Signer]:
    """The key ``--key`` names, unlocked: a PEM file (passphrase if encrypted) or a ``pkcs11:`` URI (PIN)."""
    if is_pkcs11_uri(key):
        from orchestrator.adapters.pkcs11_keys import open_token_key

        with open_token_key(parse_pkcs11_uri(key), module=args.pkcs11_module, pin=pin_source(args)) as opened:
            yield opened[0]
        return
    yield load_signing_key(Path(key), passphrase_source(args))


def register(sub: argparse._SubParsersAction[Any]) -> None:
    keys = sub.add_parser("keys", help="create signing keys and manage the trust policy's keys")
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    new = actions.add_parser("new", help="create a signing key for a role")
    new.add_argument("--role", required=True, choices=ROLES)
    where = new.add_mutually_exclusive_group(required=True)
    where.add_argument("--out", type=Path, help="private key file to create (mode 0600)")
    where.add_argument("--pkcs11", metavar="URI",
                       help="make (or find) the key on a token: pkcs11:token=...;object=...")
    new.add_argument("--algorithm", choices=tuple(GENERATE_CHOICES),
                     help="default ed25519 (on a token: ed25519 if it supports EdDSA, else ecdsa-p256)")
    new.add_argument("--policy", type=Path, help="add the public key to this policy (created if absent)")
    new.add_argument("--owner", default="", help="who holds the key, as the report should name them")
    new.add_argument("--unencrypted", action="store_true",
                     help="write the key file without a passphrase (anyone who copies it can sign)")
    new.add_argument("--json", action="store_true", help="print the result as JSON")
    add_secret_flags(new)
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
    if args.pkcs11 is not None:
        return _new_on_token(args)
    if args.unencrypted and (args.passphrase_file or args.passphrase_env):
        raise UsageError("--unencrypted and a passphrase flag contradict each other")
    out: Path = args.out
    pub = out.with_name(out.name + ".pub")
    for target in (out, pub):
        if target.exists():
            raise UsageError(f"{target} exists; refusing to overwrite a key")
    base = _load_policy(args.policy, missing_ok=True) if args.policy is not None else None
    passphrase = None if args.unencrypted else read_secret(
        passphrase_source(args), f"passphrase for the new key {out}: ", confirm=True)
    key = generate_key(args.algorithm or "ed25519")
    custody = Custody("file", encrypted=passphrase is not None)
    policy = base.with_key(key.public, args.role, args.owner, custody) if base is not None else None
    write_private_key(out, key, passphrase)
    atomic_write(pub, key.public.pem.encode("ascii"), exclusive=True)
    if policy is not None:
        atomic_write(args.policy, render_policy(policy).encode("utf-8"))
    protection = "encrypted with a passphrase" if passphrase else "NOT ENCRYPTED (--unencrypted)"
    if args.json:
        print(json.dumps({"keyid": key.keyid, "role": args.role, "algorithm": key.public.algorithm.value,
                          "private_key": str(out), "public_key": str(pub),
                          "encrypted": passphrase is not None, "custody": "file",
                          "policy": str(args.policy) if args.policy else None}))
    else:
        print(key.keyid)
        print(f"{out}: {protection}; public key in {pub}", file=sys.stderr)
    if passphrase is None:
        print(f"cmspatch: warning: {out} is not encrypted: anyone who copies the file can sign with it",
              file=sys.stderr)
    return int(ExitCode.OK)


def _new_on_token(args: argparse.Namespace) -> int:
    from orchestrator.adapters.pkcs11_keys import open_token_key

    if args.unencrypted or args.passphrase_file or args.passphrase_env:
        raise UsageError("a token key has a PIN, not a passphrase: use --pin-file/--pin-env or the prompt")
    uri = parse_pkcs11_uri(args.pkcs11)
    base = _load_policy(args.policy, missing_ok=True) if args.policy is not None else None
    with open_token_key(uri, module=args.pkcs11_module, pin=pin_source(args), create=args.algorithm,
                        allow_create=True) as (key, made):
        custody = key.custody()
    known = base.key(key.keyid) if base is not None else None
    if known is not None and known.role != args.role:
        raise UsageError(f"{key.keyid} is already in {args.policy} as {known.role} (one key, one role)")
    if base is not None and known is None:
        policy = base.with_key(key.public, args.role, args.owner, Custody.from_record(custody))
        atomic_write(args.policy, render_policy(policy).encode())
    what = "made" if made else "found (already on the token)"
    if args.json:
        print(json.dumps({"keyid": key.keyid, "role": args.role, "algorithm": key.public.algorithm.value,
                          "custody": custody, "uri": uri.render(), "created": made,
                          "public_key_pem": key.public.pem,
                          "policy": str(args.policy) if args.policy else None}))
    else:
        print(key.keyid)
        print(f"{key.public.algorithm.value} key {what} on token {custody['token']} (serial "
              f"{custody['serial']}), object {custody['object']}; it never leaves the token", file=sys.stderr)
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
             "revoked": policy.revocation(k.keyid) is not None,
             "custody": k.custody.to_dict() if k.custody is not None else None,
             "held": k.custody.describe() if k.custody is not None else "custody not recorded"}
            for k in policy.keys]
    if args.json:
        rules = [{"name": r.name, "require": dict(r.require)} for r in policy.rules]
        print(json.dumps({"keys": keys, "revoked": [r.keyid for r in policy.revoked], "thresholds": rules}))
        return int(ExitCode.OK)
    for k in keys:
        state = "REVOKED" if k["revoked"] else "active"
        print(f"{k['keyid']}  {k['role']:<17} {k['algorithm']:<10} {state:<7} {k['owner']}  [{k['held']}]")
    for rule in policy.rules:
        print(f"rule {rule.name}: {rule.describe()}")
    return int(ExitCode.OK)
