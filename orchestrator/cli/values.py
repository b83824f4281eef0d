"""Argument types for values whose rules live in the pure core, so a flag is refused at parse time with
the same words as a config file: argparse exits 2 and names the flag.

Only the conversion is here; the ranges are ``domain.campaign.BOUNDS`` and the indicator rule is
``IndicatorMap``'s.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from orchestrator.domain.campaign import BOUNDS, CampaignValueError, check_value
from orchestrator.domain.indicators import IndicatorMap
from orchestrator.errors import CmspatchError


def indicator_prefix(text: str) -> str:
    """The loopback /24 standing in for 202.114.4.0/24, as three octets of 127.0.0.0/8 (127.114.4)."""
    try:
        IndicatorMap(text)
    except CmspatchError as exc:
        raise argparse.ArgumentTypeError(
            f"{exc.message} (give three octets of 127.0.0.0/8, e.g. 127.114.4)") from None
    return text


def policy_number(field: str) -> Callable[[str], float]:
    """A number checked against the bound of the campaign policy field ``field`` (unit in the message)."""
    bound = BOUNDS[field]

    def convert(text: str) -> float:
        try:
            value: float = int(text) if bound.integer else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {bound.describe()}, not {text!r}") from None
        try:
            check_value(field, value)
        except CampaignValueError as exc:
            raise argparse.ArgumentTypeError(f"must be {exc.requirement}, not {text!r}") from None
        return value

    convert.__name__ = field  # argparse names the type in some messages
    return convert


observation_window = policy_number("observation_window")
