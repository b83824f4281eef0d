"""Subcommands of this concern (placeholder until its issue lands; registers nothing yet)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: argparse._SubParsersAction[Any]) -> None:
    return None
