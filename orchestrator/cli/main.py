"""``cmspatch`` entry point: parse, dispatch, and map every error to a documented exit code.

Data goes to stdout, diagnostics to stderr; a user error never shows a traceback (set
``CMSPATCH_DEBUG=1`` to see one when reporting a bug).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import signal
import sys
from collections.abc import Sequence

from orchestrator import __version__
from orchestrator.errors import CmspatchError, ExitCode, InventoryError, UsageError, exit_code_for

# One module per concern; each exposes ``register(subparsers)``.
COMMAND_MODULES: tuple[str, ...] = (
    "orchestrator.cli.keys",
    "orchestrator.cli.package",
    "orchestrator.cli.inventory",
    "orchestrator.cli.fleet",
    "orchestrator.cli.campaign",
    "orchestrator.cli.verify",
    "orchestrator.cli.export",
    "orchestrator.cli.tui",
    "orchestrator.cli.importer",
    "orchestrator.cli.discover",
    "orchestrator.cli.contain",
    "orchestrator.cli.vitals",
    "orchestrator.cli.incident",
    "orchestrator.cli.rollup",
    "orchestrator.cli.profile",
    "orchestrator.cli.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cmspatch",
        description="Verify, push and prove the fix for the Contec CMS8000-family backdoor.",
        epilog="Exit codes: " + ", ".join(f"{c.value} {c.name.lower()}" for c in ExitCode),
    )
    parser.add_argument("--version", action="version", version=f"cmspatch {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(sub)
    return parser


def install_network_guard(args: argparse.Namespace) -> None:
    """The loopback stand-ins a command's sinkhole listens on (``--indicator-prefix``/``--sinkhole-prefix``)
    are indicator addresses for the rest of the process: no transport connects to them. A prefix that is
    not a loopback /24 is left to the command itself to refuse with its own message."""
    from orchestrator.domain.indicators import UnsafeMapping
    from orchestrator.domain.netguard import NetworkGuard, install_guard

    for name in ("indicator_prefix", "sinkhole_prefix"):
        prefix = getattr(args, name, None)
        if isinstance(prefix, str) and prefix:
            try:
                install_guard(NetworkGuard.with_indicator_maps([prefix]))
            except UnsafeMapping:
                continue


def input_error(exc: BaseException) -> UsageError | None:
    """An operating-system refusal of a path the user typed, as the usage error it is. Caught here once
    rather than at each of the many places a path is stat'ed or opened (``--out``, ``--package``, ...):
    a name longer than the file system allows is the user's to fix, not a bug (exit 2, not 70)."""
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
        name = os.fsdecode(exc.filename) if exc.filename is not None else "a path"
        shown = name if len(name) <= 60 else f"{name[:40]}...{name[-12:]}"
        return UsageError(f"{shown}: the path is longer than the file system allows (255 bytes a name, "
                          f"{os.pathconf('/', 'PC_PATH_MAX')} a path)", reason="path-too-long")
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help(sys.stderr)
        return int(ExitCode.USAGE)
    try:
        install_network_guard(args)
        return int(func(args))
    except BrokenPipeError:
        # `cmspatch status | head`: the reader left, which is not our bug. Stop writing (Python would
        # report the failed flush at exit) and end as a shell tool killed by SIGPIPE would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + int(signal.SIGPIPE)
    except KeyboardInterrupt:
        print("cmspatch: interrupted; the journal is consistent and the run can be resumed", file=sys.stderr)
        return int(ExitCode.INTERRUPTED)
    except InventoryError as exc:
        for problem in exc.problems:
            print(f"cmspatch: {problem}", file=sys.stderr)
        return int(exit_code_for(exc))
    except CmspatchError as exc:
        print(f"cmspatch: {exc.message} [{exc.reason}]", file=sys.stderr)
        return int(exit_code_for(exc))
    except Exception as exc:  # a bug: short message, no traceback unless asked for
        usage = input_error(exc)
        if usage is not None:
            print(f"cmspatch: {usage.message} [{usage.reason}]", file=sys.stderr)
            return int(exit_code_for(usage))
        if os.environ.get("CMSPATCH_DEBUG"):
            raise
        print(f"cmspatch: internal error: {type(exc).__name__}: {exc} (set CMSPATCH_DEBUG=1 for details)",
              file=sys.stderr)
        return int(ExitCode.INTERNAL)


if __name__ == "__main__":
    sys.exit(main())
