"""What risk remembers across a restart (docs/architecture.md, "Invariants > Runs never re-bet"),
and a book-wide cap that keeps rejecting is never silent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

from bot.types import Decision, OrderStatus, Verdict
from tests.risk.factories import Env, make_signal, selection


def _filled(env: Env, decision: Decision) -> None:
    request_uuid = env.submit(decision)
    env.fill(request_uuid, decision.signal.bookmakers[0], decision.stake, decision.signal.price)
    env.order_update(request_uuid, OrderStatus.FILLED, decision.stake)


async def test_a_restart_does_not_act_again_on_what_was_acted_on(make_env: Callable[..., Env]) -> None:
    env = make_env()
    sel = selection()
    env.quote(sel, "bookA", 2.0)
    first = await env.risk.evaluate(make_signal(sel, env.clock.now(), price=2.0), None)
    _filled(env, first)
    restarted = env.new_risk()
    # the same strategy/selection/side/books/price again (a new signal id): refused
    again = await restarted.evaluate(make_signal(sel, env.clock.now(), price=2.0), None)
    assert (again.verdict, again.reason) == (Verdict.REJECTED, "DUPLICATE_SIGNAL")
    assert again.details["acted_on_before"] == first.signal.signal_id
    # another price, another book or another strategy is a new decision
    env.quote(sel, "bookA", 2.1)
    env.quote(sel, "bookB", 2.0)
    for sig in (make_signal(sel, env.clock.now(), price=2.1),
                make_signal(sel, env.clock.now(), bookmakers=("bookB",)),
                make_signal(sel, env.clock.now(), strategy="s2")):
        assert (await restarted.evaluate(sig, None)).approved, sig


async def test_the_memory_ends_with_its_window(make_env: Callable[..., Env]) -> None:
    env = make_env(duplicate_window_seconds=600)
    sel = selection()
    env.quote(sel, "bookA", 2.0)
    first = await env.risk.evaluate(make_signal(sel, env.clock.now()), None)
    _filled(env, first)
    env.clock.advance(env.clock.now() + timedelta(seconds=601))
    env.quote(sel, "bookA", 2.0)
    restarted = env.new_risk()
    assert (await restarted.evaluate(make_signal(sel, env.clock.now()), None)).approved


async def test_a_rejected_signal_is_not_remembered_as_acted_on(make_env: Callable[..., Env]) -> None:
    env = make_env(max_stake=Decimal(5), resize_to_fit=False)
    sel = selection()
    env.quote(sel, "bookA", 2.0)
    assert not (await env.risk.evaluate(make_signal(sel, env.clock.now(), stake="10"), None)).approved
    restarted = env.new_risk()
    assert (await restarted.evaluate(make_signal(sel, env.clock.now(), stake="5"), None)).approved


async def test_a_saturated_strategy_cap_warns_at_1_10_100(make_env: Callable[..., Env], warnings: list[str]) -> None:
    env = make_env(max_exposure_strategy=Decimal(10), resize_to_fit=False, max_orders_per_window=1000,
                   block_while_in_flight=False)
    for n in range(101):
        sel = selection("home", n)
        env.quote(sel, "bookA", 2.0)
        decision = await env.risk.evaluate(make_signal(sel, env.clock.now(), stake="10"), None)
        if n:
            assert decision.reason == "EXPOSURE_STRATEGY"
    saturated = [w for w in warnings if "EXPOSURE_STRATEGY rejected" in w]
    assert [w.split(" rejected ")[1].split(" ")[0] for w in saturated] == ["1", "10", "100"]
    assert "freed only when they settle" in saturated[0]
