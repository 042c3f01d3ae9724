"""Trading-state control and persistence: CLI halt/resume/status on the ledger, restart restores
state and exposure, kill switch and emergency, day boundary in the configured zone, breaker
cycle on the engine clock, reservations under concurrency and their sweep."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from bot.ledger.models import SettlementRow
from bot.risk.breakers import Breaker, BreakerState
from bot.risk.cli import app
from bot.risk.config import BreakerConfig
from bot.risk.control import ResumeRefused, trading_day
from bot.types import BetStatus, OrderStatus, Side, Verdict
from tests.risk.factories import Env, make_signal, selection

runner = CliRunner()


async def test_cli_halt_is_adopted_by_running_bot_and_resume_clears_it(env: Env) -> None:
    halts: list[str] = []
    env.risk.control.on_halt(halts.append)
    sel = selection()
    env.quote(sel)
    cfg = str(env.config_file())
    result = runner.invoke(app, ["halt", "--reason", "going to lunch", "-c", cfg])
    assert result.exit_code == 0, result.output
    d = await env.risk.evaluate(make_signal(sel, env.clock.now()), None)
    assert d.reason == "TRADING_HALTED" and halts == ["going to lunch"]
    status = json.loads(runner.invoke(app, ["status", "--json", "-c", cfg]).output)
    assert status["state"] == "HALTED" and status["reason"] == "going to lunch"
    assert runner.invoke(app, ["resume", "-c", cfg]).exit_code == 0
    assert (await env.risk.evaluate(make_signal(sel, env.clock.now()), None)).approved


def test_cli_resume_refused_while_kill_file_exists(env: Env) -> None:
    env.risk.control.halt("kill switch: SIGUSR1")
    (env.state_dir / "KILL").write_text("")
    result = runner.invoke(app, ["resume", "-c", str(env.config_file())])
    assert result.exit_code == 1 and "kill switch file exists" in result.output
    with pytest.raises(ResumeRefused):
        env.risk.control.resume()


def test_cli_without_ledger_fails_with_one_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "config.yaml"
    cfg.write_text("state_dir: elsewhere\n")
    result = runner.invoke(app, ["status", "-c", str(cfg), "--state-dir", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no ledger at" in result.output
    result = runner.invoke(app, ["status", "-c", str(cfg)])  # the config's state dir, next to the config
    assert result.exit_code == 2 and f"no ledger at {tmp_path / 'elsewhere' / 'bot.db'}" in result.output


def test_cli_bad_config_prints_its_lines_and_exits_2(tmp_path) -> None:  # type: ignore[no-untyped-def]
    cfg = tmp_path / "config.yaml"
    cfg.write_text("risk:\n  day_timezone: Mars/Olympus\n  max_stake: -5\n")
    for command in (["status"], ["halt"], ["resume"]):
        result = runner.invoke(app, [*command, "-c", str(cfg)])
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 2 and all(line.startswith("config error: risk.") for line in lines), lines


@pytest.mark.parametrize(("zone", "day_pnl"), [("America/New_York", "-7"), ("UTC", None)])
def test_cli_status_counts_the_day_in_the_configs_zone(make_env, zone: str, day_pnl: str | None) -> None:
    """Two settlements either side of the New York day's start (wall clock, as the CLI runs):
    only the later one is in New York's trading day; the UTC day differs."""
    env = make_env(day_timezone=zone)
    day, start = trading_day(datetime.now(UTC), "America/New_York")
    for bet_id, at, pnl in ((1, start - timedelta(minutes=1), "-100"), (2, start, "-7")):
        env.ledger.add_settlement(SettlementRow(bet_id=bet_id, request_uuid="x", strategy="s1", status="LOST",
                                                stake=Decimal(10), amount=Decimal(0), pnl=Decimal(pnl), at=at))
    status = json.loads(runner.invoke(app, ["status", "--json", "-c", str(env.config_file())]).output)
    assert status["timezone"] == zone and status["equity"] == "-107"
    if day_pnl is not None:
        assert (status["day"], status["day_pnl"]) == (day, day_pnl)
    else:  # UTC: the day starts 4-5 h earlier, so the -100 counts too, or (UTC already tomorrow) neither
        assert status["day_pnl"] in ("-107", "0") and status["day"] == trading_day(datetime.now(UTC), "UTC")[0]


def test_trading_day_is_midnight_in_the_zone() -> None:
    at = datetime(2025, 11, 17, 3, 0, tzinfo=UTC)  # 22:00 on the 16th in New York (EST, UTC-5)
    assert trading_day(at, "America/New_York") == ("2025-11-16", datetime(2025, 11, 16, 5, 0, tzinfo=UTC))
    assert trading_day(at, "UTC") == ("2025-11-17", datetime(2025, 11, 17, 0, 0, tzinfo=UTC))
    summer = datetime(2025, 7, 1, 3, 59, tzinfo=UTC)  # EDT, UTC-4: 23:59 on June 30th
    assert trading_day(summer, "America/New_York") == ("2025-06-30", datetime(2025, 6, 30, 4, 0, tzinfo=UTC))


async def test_restart_restores_state_and_exposure_from_ledger(env: Env) -> None:
    a, b = selection("home"), selection("away")
    env.quote(a)
    env.quote(b, "bookA", 4.0, lay=4.0)
    d1 = await env.risk.evaluate(make_signal(a, env.clock.now(), stake="30"), None)
    d2 = await env.risk.evaluate(make_signal(b, env.clock.now(), stake="10", price=4.0, side=Side.LAY), None)
    u1, u2 = env.submit(d1), env.submit(d2)
    env.ledger.update_order(u1, filled_stake=Decimal(12), status=OrderStatus.PENDING.value)
    env.fill(u1, "bookA", Decimal(12), 2.0)
    env.fill(u2, "bookA", Decimal(10), 4.0)
    env.order_update(u2, OrderStatus.FILLED, Decimal(10))
    env.risk.control.reduce("winding down")
    before = env.risk.exposure()
    assert before["total"]["total"] == Decimal(60)  # 12 bet + 18 in flight + lay liability 30
    restarted = env.new_risk()
    assert restarted.exposure() == before
    assert restarted.control.state == "REDUCING"


async def test_restart_counts_a_pending_bet_as_exposure(make_env) -> None:  # type: ignore[no-untyped-def]
    """A bet still PENDING at the bookmaker may yet be placed: after a restart it must count
    (fail closed), or a second signal could pass a cap the first one already fills."""
    env = make_env(max_exposure_selection=Decimal(50))
    sel = selection("home")
    env.quote(sel)
    d1 = await env.risk.evaluate(make_signal(sel, env.clock.now(), stake="40"), None)
    u1 = env.submit(d1)
    env.fill(u1, "bookA", Decimal(40), 2.0, status=BetStatus.PENDING)
    env.order_update(u1, OrderStatus.FILLED, Decimal(40))
    restarted = env.new_risk()
    assert restarted.exposure()["total"]["total"] == Decimal(40)
    d2 = await restarted.evaluate(make_signal(sel, env.clock.now(), stake="40"), None)
    assert d2.stake <= Decimal(10)  # only what still fits under the 50 cap, or rejected


async def test_kill_switch_and_emergency_halt_and_call_async_callback(env: Env) -> None:
    called: list[str] = []

    async def cancel_pending(reason: str) -> None:
        called.append(reason)

    env.risk.control.on_halt(cancel_pending)
    env.risk.control.halt("kill switch: SIGUSR1")
    await asyncio.sleep(0)
    assert env.risk.control.state == "HALTED" and called == ["kill switch: SIGUSR1"]
    env.risk.control.resume()
    env.risk.control.set_emergency(True, "maintenance")
    await asyncio.sleep(0)
    assert called[-1] == "venue emergency: maintenance"
    with pytest.raises(ResumeRefused):
        env.risk.control.resume()
    env.risk.control.set_emergency(False, "")
    assert env.risk.control.state == "HALTED"  # an ABP emergency needs a manual resume
    env.risk.control.resume()
    assert env.risk.control.state == "ACTIVE"


@pytest.mark.parametrize(("zone", "verdict"), [("America/New_York", "LOSS_LIMIT"), ("UTC", None)])
async def test_daily_loss_counts_in_the_configured_zone(make_env, zone: str, verdict: str | None) -> None:
    env = make_env(day_timezone=zone)
    env.ledger.add_settlement(SettlementRow(bet_id=1, request_uuid="x", strategy="s1", status="LOST",
                                            stake=Decimal(1000), amount=Decimal(0), pnl=Decimal(-1000),
                                            at=datetime(2025, 11, 16, 20, 0, tzinfo=UTC)))
    env.clock.advance(datetime(2025, 11, 17, 3, 0, tzinfo=UTC))  # 22:00 on the 16th in New York
    sel = selection()
    env.quote(sel)
    d = await env.risk.evaluate(make_signal(sel, env.clock.now()), None)
    assert d.reason == verdict


def test_breaker_cycle_on_the_clock(env: Env) -> None:
    cfg = BreakerConfig(max_consecutive_failures=3, error_rate=0.5, min_samples=4, cooldown_seconds=60)
    br = Breaker("bookA", cfg, env.clock)
    br.record(failed=True)
    br.record(failed=True)
    assert br.state is BreakerState.CLOSED
    br.record(failed=True)
    assert br.state is BreakerState.OPEN and not br.allow()
    env.clock.advance(env.clock.now() + timedelta(seconds=59))
    assert br.state is BreakerState.OPEN
    env.clock.advance(env.clock.now() + timedelta(seconds=1))
    assert br.state is BreakerState.HALF_OPEN and br.allow()
    br.begin_probe("p1")
    assert not br.allow()  # one probe at a time
    br.record(failed=True)  # the probe failed: open again, cooldown restarts
    assert br.state is BreakerState.OPEN
    env.clock.advance(env.clock.now() + timedelta(seconds=60))
    br.begin_probe("p2")
    br.record(failed=False)
    assert br.state is BreakerState.CLOSED and br.allow()
    # error rate: the failure that makes it 2 of 4 (never 2 in a row) trips it
    for failed in (False, True, False, True):
        br.record(failed=failed)
    assert br.state is BreakerState.OPEN


async def test_half_open_breaker_lets_one_probe_through_risk(make_env) -> None:
    env = make_env(bookmaker_breaker=BreakerConfig(max_consecutive_failures=1, cooldown_seconds=10))
    sels = [selection(n=n) for n in range(4)]
    for s in sels:
        env.quote(s)
    d = await env.risk.evaluate(make_signal(sels[0], env.clock.now()), None)
    env.order_update(env.submit(d), OrderStatus.DECLINED)
    assert (await env.risk.evaluate(make_signal(sels[1], env.clock.now()), None)).reason == "BREAKER_OPEN"
    env.clock.advance(env.clock.now() + timedelta(seconds=10))
    for s in sels:
        env.quote(s)
    probe = await env.risk.evaluate(make_signal(sels[1], env.clock.now()), None)
    assert probe.approved
    assert (await env.risk.evaluate(make_signal(sels[2], env.clock.now()), None)).reason == "BREAKER_OPEN"
    u = env.submit(probe)
    env.fill(u, "bookA", Decimal(10), 2.0)
    assert env.risk.breaker_states()["bookA"] == "CLOSED"
    assert (await env.risk.evaluate(make_signal(sels[2], env.clock.now()), None)).approved


async def test_concurrent_evaluations_cannot_both_take_the_last_room(make_env) -> None:
    env = make_env(max_exposure_total=Decimal(15), resize_to_fit=False)
    sels = [selection(n=n) for n in range(8)]
    for s in sels:
        env.quote(s)
    decisions = await asyncio.gather(*(env.risk.evaluate(make_signal(s, env.clock.now(), stake="10"), None)
                                       for s in sels))
    assert sum(d.approved for d in decisions) == 1
    assert {d.reason for d in decisions if not d.approved} == {"EXPOSURE_TOTAL"}


async def test_reservation_release_on_decline_and_sweep_of_unsubmitted(make_env) -> None:
    env = make_env(reservation_ttl_seconds=60)
    a, b = selection("home"), selection("away")
    env.quote(a)
    env.quote(b)
    da = await env.risk.evaluate(make_signal(a, env.clock.now()), None)
    db = await env.risk.evaluate(make_signal(b, env.clock.now()), None)
    ua = env.submit(da)  # b is never submitted
    assert env.risk.exposure()["total"]["total"] == Decimal(20)
    env.clock.advance(env.clock.now() + timedelta(seconds=61))
    assert env.risk.sweep() == 1
    assert env.risk.exposure()["total"]["total"] == Decimal(10)
    env.order_update(ua, OrderStatus.DECLINED)
    assert env.risk.exposure()["total"]["total"] == Decimal(0)
    assert db.verdict is Verdict.APPROVED


def test_a_halt_written_by_another_process_survives_the_bots_own_bookkeeping(env: Env) -> None:
    """`bot risk halt` writes the ledger while the bot holds an older record; the bot then saves
    its own change (a new day here) before its next sync: the halt must stand, and fire."""
    from bot.risk.control import TradingControl

    bot, fired = env.risk.control, []
    bot.on_halt(fired.append)
    cli = TradingControl(env.ledger, env.clock, zone="UTC", state_dir=env.state_dir)
    cli.halt("operator: stop")
    env.clock.advance(env.clock.now() + timedelta(days=1))
    bot.new_day()  # persists the bot's record: it must adopt the halt, not overwrite it
    assert bot.state == "HALTED" and fired == ["operator: stop"]
    fresh = TradingControl(env.ledger, env.clock, zone="UTC", state_dir=env.state_dir)
    assert fresh.state == "HALTED" and fresh.record.reason == "operator: stop"


def test_a_halt_of_the_bot_is_kept_over_another_process_write(env: Env) -> None:
    from bot.risk.control import TradingControl

    bot = env.risk.control
    cli = TradingControl(env.ledger, env.clock, zone="UTC", state_dir=env.state_dir)
    cli.reduce("operator: wind down")  # written while the bot still holds the older record
    bot.halt("loss limit")
    fresh = TradingControl(env.ledger, env.clock, zone="UTC", state_dir=env.state_dir)
    assert bot.state == fresh.state == "HALTED" and fresh.record.reason == "loss limit"
