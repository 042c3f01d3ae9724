"""The check list itself: the built-in checks are the documented ones in the documented order,
the order is the config's, and a check left out of the list does not run."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.risk.checks import BUILTIN_CHECKS
from bot.risk.config import DEFAULT_CHECKS, RiskConfig
from bot.risk.reasons import Reason
from tests.risk.factories import Env, make_signal, selection

ARCHITECTURE = Path(__file__).parents[2] / "docs" / "architecture.md"


def test_default_order_is_the_documented_one() -> None:
    text = ARCHITECTURE.read_text()
    paragraph = text[text.index("Default order:"):].split("Legs of one")[0]  # then GROUP_INCOMPLETE
    codes: list[str] = []
    for token in re.findall(r"\b_?[A-Z][A-Z_]{3,}\b", paragraph):
        codes.append(f"EXPOSURE{token}" if token.startswith("_") else token)
    assert codes[0] == "RISK_UNAVAILABLE"  # the frame around the checks, not a check
    assert [c.lower() for c in codes[1:]] == list(DEFAULT_CHECKS)
    assert RiskConfig().checks == list(DEFAULT_CHECKS)


def test_every_reason_but_the_frame_has_one_built_in_check() -> None:
    assert set(BUILTIN_CHECKS) == set(DEFAULT_CHECKS)
    assert {cls.reason for cls in BUILTIN_CHECKS.values()} == set(Reason) - {
        Reason.RISK_UNAVAILABLE, Reason.GROUP_INCOMPLETE,
        Reason.MM_STALE}  # given by the fixture and bookmaker caps (mm.combined_exposure, bot/risk/external.py)


async def test_the_configured_order_decides_which_check_rejects(make_env: Callable[..., Env]) -> None:
    """A signal failing two checks gets the reason of whichever comes first in `risk.checks`."""
    reordered = ["stake_below_min", *(c for c in DEFAULT_CHECKS if c != "stake_below_min")]
    reasons = []
    for checks in (list(DEFAULT_CHECKS), reordered):
        env = make_env(checks=checks)
        sel = selection()
        env.quote(sel, "bookA", 25.0)
        d = await env.risk.evaluate(make_signal(sel, env.clock.now(), stake="0.50", price=25.0), None)
        reasons.append(d.reason)
    assert reasons == ["ODDS_OUT_OF_RANGE", "STAKE_BELOW_MIN"]


async def test_a_check_left_out_does_not_run(make_env: Callable[..., Env]) -> None:
    env = make_env(checks=[c for c in DEFAULT_CHECKS if c != "rate_limit"], max_orders_per_window=1)
    for n in range(3):
        sel = selection(n=n)
        env.quote(sel)
        assert (await env.risk.evaluate(make_signal(sel, env.clock.now()), None)).approved


async def test_resizes_accumulate_in_check_order(make_env: Callable[..., Env]) -> None:
    env = make_env(max_stake=Decimal(40), max_exposure_selection=Decimal(25))
    sel = selection()
    env.quote(sel)
    d = await env.risk.evaluate(make_signal(sel, env.clock.now(), stake="50"), None)
    assert (d.reason, d.stake) == ("STAKE_ABOVE_MAX", Decimal("25.00"))
    assert d.details["resized_by"] == ["STAKE_ABOVE_MAX", "EXPOSURE_SELECTION"]
    assert d.details["exposure_selection"] == {"dimension": "selection", "current": "0", "adding": "40", "cap": "25"}


@pytest.mark.parametrize(("checks", "line"), [
    (["emergency", "x"], "risk.checks[1]: unknown check 'x' (known: emergency, kill_switch,"),
    (["emergency", "drawdown", "emergency"], "risk.checks[2]: check 'emergency' is listed twice"),
    ([":Cls"], "risk.checks[0]: unknown check ':Cls'"),
])
def test_bad_check_names_fail_the_config(checks: list[str], line: str) -> None:
    with pytest.raises(ValidationError) as caught:
        RiskConfig(checks=checks)
    assert line in str(caught.value)
