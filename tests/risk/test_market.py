"""Market worst case (bot/risk/market.py, docs/architecture.md "Risk > Market worst case"):
hand-computed figures with mixed backs and lays (as `bot risk status` shows them too), the
EXPOSURE_MARKET cap, and a property that the incremental figure equals a brute force over every
winner and every fill of the pending orders."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.risk.cli import status_figures
from bot.risk.positions import BetPosition, PositionBook, Scope
from bot.risk.reasons import Reason
from bot.types import MarketKey, OrderStatus, Side, Verdict
from tests.risk.factories import T0, Env, make_signal, selection

X12 = MarketKey("1x2")
OUTCOMES = ("home", "draw", "away")


def _market(market: MarketKey = X12) -> str:
    return selection("home", 0, market).key.rpartition("|")[0]


async def _filled(env: Env, outcome: str, side: Side, stake: str, price: float) -> None:
    sel = selection(outcome, 0, X12)
    d = await env.risk.evaluate(make_signal(sel, env.clock.now(), stake=stake, price=price, side=side), None)
    assert d.verdict is Verdict.APPROVED, d
    u = env.submit(d)
    env.fill(u, "bookA", Decimal(stake), price)
    env.order_update(u, OrderStatus.FILLED, Decimal(stake))


def _quote_all(env: Env) -> None:
    for outcome, back, lay in (("home", 2.5, 2.4), ("draw", 3.5, 3.4), ("away", 4.0, 4.2)):
        env.quote(selection(outcome, 0, X12), "bookA", back, lay=lay)


async def test_worst_case_of_mixed_backs_and_lays_by_hand(make_env: Callable[..., Env]) -> None:
    env = make_env()
    _quote_all(env)
    await _filled(env, "home", Side.BACK, "10", 2.5)
    await _filled(env, "draw", Side.LAY, "10", 3.4)
    pending = await env.risk.evaluate(make_signal(selection("away", 0, X12), env.clock.now(), stake="5", price=4.0),
                                      None)
    env.submit(pending)  # sent, nothing filled: counts only where "away" loses
    # home wins: +15 (back home) +10 (lay draw) -5 (pending away) = +20
    # draw wins: -10 -24 -5 = -39;  away wins: -10 +10 +0 = 0  -> worst case 39
    assert env.risk.market_exposure() == {_market(): Decimal(39)}
    # the fixture cap still adds each item's own worst: 10 + 24 + 5
    assert env.risk.exposure()["fixture"] == {str(selection().fixture): Decimal(39)}
    await _filled(env, "home", Side.LAY, "10", 2.4)
    # home: 20 - 14 = +6; draw: -39 + 10 = -29; away: 0 + 10 = +10 -> worst case 29, fixture figure 53
    assert env.risk.market_exposure() == {_market(): Decimal(29)}
    assert env.risk.exposure()["fixture"] == {str(selection().fixture): Decimal(53)}
    # `bot risk status` rebuilds the same figure from the ledger alone
    shown = status_figures(env.ledger, env.risk.control)["exposure"]["by_market"]
    assert {k: Decimal(v) for k, v in shown.items()} == {_market(): Decimal(29)}


async def test_a_lay_against_a_back_passes_the_market_cap_at_the_cap(make_env: Callable[..., Env]) -> None:
    env = make_env(max_exposure_market=Decimal(10), resize_to_fit=False)
    home, away = selection("home"), selection("away")
    env.quote(home, "bookA", 2.0, lay=2.1)
    env.quote(away, "bookA", 2.0, lay=2.1)
    u = env.submit(await env.risk.evaluate(make_signal(home, env.clock.now(), stake="10", price=2.0), None))
    env.fill(u, "bookA", Decimal(10), 2.0)
    env.order_update(u, OrderStatus.FILLED, Decimal(10))
    assert env.risk.market_exposure() == {_market(MarketKey("moneyline")): Decimal(10)}  # away wins: -10
    # one more back on home would lose 15 if away wins
    more = await env.risk.evaluate(make_signal(home, env.clock.now(), stake="5", price=2.0), None)
    assert (more.verdict, more.reason) == (Verdict.REJECTED, Reason.EXPOSURE_MARKET.value)
    assert more.details["current"] == "10" and more.details["after"] == "15" and more.details["fits"] == "0.00"
    # a lay of home at 2.1 pending: home wins 10 - 11 = -1, away wins -10: the worst case stays 10
    lay = await env.risk.evaluate(make_signal(home, env.clock.now(), stake="10", price=2.1, side=Side.LAY), None)
    assert lay.approved, lay
    u2 = env.submit(lay)
    env.fill(u2, "bookA", Decimal(10), 2.1)
    env.order_update(u2, OrderStatus.FILLED, Decimal(10))
    # filled: home wins 10 - 11 = -1, away wins -10 + 10 = 0
    assert env.risk.market_exposure() == {_market(MarketKey("moneyline")): Decimal(1)}


async def test_market_cap_resizes_to_the_largest_stake_that_fits(make_env: Callable[..., Env]) -> None:
    env = make_env(max_exposure_market=Decimal(12))
    _quote_all(env)
    await _filled(env, "draw", Side.LAY, "5", 3.4)  # draw wins: -12; else +5
    # back home pending x: draw wins -12 - x, away wins 5 - x: the cap 12 is already reached at draw,
    # so no stake fits; a lay of home at 2.4 costs 1.4 per unit where home wins (+5 now): up to 12.14
    back = await env.risk.evaluate(make_signal(selection("home", 0, X12), env.clock.now(), stake="3", price=2.5),
                                   None)
    assert (back.verdict, back.reason) == (Verdict.REJECTED, Reason.EXPOSURE_MARKET.value)
    lay = await env.risk.evaluate(make_signal(selection("home", 0, X12), env.clock.now(), stake="20", price=2.4,
                                              side=Side.LAY), None)
    assert (lay.verdict, lay.reason, lay.stake) == (Verdict.RESIZED, Reason.EXPOSURE_MARKET.value, Decimal("12.14"))
    env.submit(lay)
    # home wins: 5 - 1.4 x 12.14 = -11.996; draw wins still -12
    assert env.risk.market_exposure() == {_market(): Decimal(12)}


# -- property: incremental == brute force ---------------------------------------------------

position = st.tuples(
    st.sampled_from(OUTCOMES), st.sampled_from([Side.BACK, Side.LAY]), st.integers(1, 50),
    st.sampled_from([1.3, 2.0, 2.5, 3.4, 7.0]), st.booleans(),  # True: a placed bet, False: pending
)


def _brute_force(items: list[tuple[str, Side, int, float, bool]], outcomes: tuple[str, ...]) -> Decimal:
    """Every winner x every fill (all or nothing of each pending order: the PnL is linear in the
    fill, so the extremes bound it)."""
    pending = [i for i, it in enumerate(items) if not it[4]]
    worst = Decimal(0)
    for winner in outcomes:
        for fills in itertools.product((0, 1), repeat=len(pending)):
            filled = dict(zip(pending, fills, strict=True))
            pnl = Decimal(0)
            for i, (outcome, side, stake, price, placed) in enumerate(items):
                if not placed and not filled[i]:
                    continue
                won = Decimal(str(price)) - 1 if outcome == winner else Decimal(-1)
                pnl += stake * (won if side is Side.BACK else -won)
            worst = max(worst, -pnl)
    return worst


@settings(max_examples=300, deadline=None)
@given(items=st.lists(position, max_size=7), drop=st.data())
def test_incremental_figure_equals_brute_force(items: list[tuple[str, Side, int, float, bool]],
                                               drop: st.DataObject) -> None:
    book = PositionBook()
    for i, (outcome, side, stake, price, placed) in enumerate(items):
        sel = selection(outcome, 0, X12)
        scope = Scope("s1", sel.key, str(sel.fixture), ("bookA",))
        if placed:
            book.put_bet(BetPosition(i, scope, side, Decimal(stake), price, None))
        else:
            sig = make_signal(sel, T0, stake=str(stake), price=price, side=side)
            book.reserve(sig, Decimal(stake), T0 + timedelta(seconds=i))
    key = selection("home", 0, X12).key
    assert book.market_worst_case(key) == _brute_force(items, OUTCOMES)
    # removing items keeps the sums exact
    gone = drop.draw(st.sets(st.sampled_from(range(len(items))))) if items else set()
    for i in gone:
        if items[i][4]:
            book.close_bet(i)
    kept = [it for i, it in enumerate(items) if not (it[4] and i in gone)]
    assert book.market_worst_case(key) == _brute_force(kept, OUTCOMES)
