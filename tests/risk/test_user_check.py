"""A user's own check (tests/risk/night_check.py, 22 lines) runs where `risk.checks` puts it, and
its rejections reach the ledger and `bot report` under its own reason code; bad entries stop
start-up with one line naming the entry."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.config.settings import ConfigError, load_settings
from bot.engine.wiring import build_engine
from bot.ledger.report import build_report
from bot.risk.checks import CheckLoadError
from bot.risk.cli import app as risk_app
from bot.risk.config import DEFAULT_CHECKS
from tests.risk.factories import Env, make_signal, selection

HERE = Path(__file__).parent
NIGHT_CHECK = f"{HERE / 'night_check.py'}:MaxOddsAtNight"
FIRST3 = HERE.parent / "data" / "oddsapi" / "nfl_snapshots_2025-11-16_first3.jsonl.gz"
NIGHT = datetime(2025, 11, 17, 3, 0, tzinfo=UTC)  # 22:00 in New York
PRICES = (3.0, 5.0, 25.0)  # fine at night / a night longshot / outside risk's [1.01, 20] as well


def checks_with_user_check_at(index: int) -> list[str]:
    names = list(DEFAULT_CHECKS)
    names.insert(index, NIGHT_CHECK)
    return names


async def _decide_each_price(env: Env, fixture: int = 0) -> dict[float, str | None]:
    """The reason code (None: approved) of one back signal per price, each on its own fixture."""
    reasons: dict[float, str | None] = {}
    for n, price in enumerate(PRICES, start=fixture):
        sel = selection(n=n)
        env.quote(sel, "bookA", price)
        reasons[price] = (await env.risk.evaluate(make_signal(sel, env.clock.now(), price=price), None)).reason
    return reasons


async def test_user_check_runs_after_the_checks_before_it(make_env: Callable[..., Env]) -> None:
    env = make_env(checks=checks_with_user_check_at(DEFAULT_CHECKS.index("odds_out_of_range") + 1))
    assert await _decide_each_price(env) == {3.0: None, 5.0: None, 25.0: "ODDS_OUT_OF_RANGE"}  # daytime
    env.clock.advance(NIGHT)
    # 25.0 never reaches the user check: the built-in range check before it rejects first
    assert await _decide_each_price(env, fixture=10) == {3.0: None, 5.0: "MAX_ODDS_AT_NIGHT", 25.0: "ODDS_OUT_OF_RANGE"}
    rejected = [d for d in env.ledger.decisions() if d.reason == "MAX_ODDS_AT_NIGHT"]
    assert [d.details for d in rejected] == [{"price": 5.0, "hour": 22, "max_price": 4.0, "state": "ACTIVE"}]
    assert build_report(env.ledger.path)["decisions"]["by_reason"] == {
        "APPROVED": 3, "REJECTED:MAX_ODDS_AT_NIGHT": 1, "REJECTED:ODDS_OUT_OF_RANGE": 2}


async def test_user_check_first_rejects_before_the_kill_switch(make_env: Callable[..., Env]) -> None:
    env = make_env(checks=checks_with_user_check_at(0))
    env.clock.advance(NIGHT)
    (env.state_dir / "KILL").write_text("")
    assert await _decide_each_price(env) == {3.0: "KILL_SWITCH", 5.0: "MAX_ODDS_AT_NIGHT", 25.0: "MAX_ODDS_AT_NIGHT"}
    assert env.risk.control.state == "HALTED"  # the 3.0 signal reached the kill switch, which halted
    env.ledger.flush()  # decisions are group-committed; the report reads the file
    assert build_report(env.ledger.path)["decisions"]["by_reason"] == {
        "REJECTED:KILL_SWITCH": 1, "REJECTED:MAX_ODDS_AT_NIGHT": 2}


async def test_user_check_in_the_engine_on_a_real_replay(tmp_path: Path) -> None:
    """The bundled NFL odds of 12:40-13:37 UTC (07:40-08:37 in New York: night for the check),
    the template strategy backing every price >= 3.0, risk.max_price 6.0 and the user check
    after the range check: longshots up to 6.0 are the user check's, above 6.0 the range's."""
    checks = checks_with_user_check_at(DEFAULT_CHECKS.index("odds_out_of_range") + 1)
    settings = load_settings(
        None, mode="paper", state_dir=tmp_path / "state", logging={"json_file": False, "progress": False},
        feeds={"replay": {"path": str(FIRST3)}, "stale_after_seconds": 3600},
        strategies=[{"name": "longshots", "path": "template", "params": {"min_price": 3.0, "stake": 5}}],
        risk={"max_price": 6.0, "checks": checks, "max_orders_per_window": 1000},
    )
    engine = await build_engine(settings, config_dir=tmp_path)
    await engine.run()
    db = settings.state_dir / "bot.db"
    by_reason = build_report(db)["decisions"]["by_reason"]
    assert by_reason["REJECTED:MAX_ODDS_AT_NIGHT"] > 0 and by_reason["REJECTED:ODDS_OUT_OF_RANGE"] > 0
    assert by_reason.get("APPROVED", 0) > 0  # 3.0 to 4.0 passes it
    con = sqlite3.connect(db)
    try:
        prices = dict(con.execute("select d.reason, group_concat(s.price) from decisions d join signals s "
                                  "using(signal_id) where d.reason in ('MAX_ODDS_AT_NIGHT', 'ODDS_OUT_OF_RANGE') "
                                  "group by d.reason").fetchall())
    finally:
        con.close()
    assert all(4.0 < float(p) <= 6.0 for p in prices["MAX_ODDS_AT_NIGHT"].split(","))
    assert all(float(p) > 6.0 for p in prices["ODDS_OUT_OF_RANGE"].split(","))


def test_unknown_check_fails_config_with_one_line_naming_the_entry(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("risk:\n  checks: [emergency, kill_switch, x]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(cfg)
    assert len(caught.value.lines) == 1
    assert "risk.checks[2]: unknown check 'x' (known: emergency, kill_switch, trading_halted," in caught.value.lines[0]
    result = CliRunner().invoke(risk_app, ["status", "-c", str(cfg)])
    assert result.exit_code == 2 and result.stderr.strip() == caught.value.lines[0]


@pytest.mark.parametrize(("entry", "message"), [
    ("nowhere/missing.py:MaxOddsAtNight", "risk.checks[0]: file 'nowhere/missing.py' not found"),
    (f"{HERE / 'night_check.py'}:NEW_YORK", "is not a subclass of bot.risk.checks.Check"),
    ("bot.risk.checks:Check", "needs a reason code like 'MAX_ODDS_AT_NIGHT' (got None)"),
    ("bot.no_such_module:Check", "risk.checks[0]: importing 'bot.no_such_module:Check' failed: ModuleNotFoundError"),
])
def test_a_check_class_that_cannot_load_stops_start_up(make_env: Callable[..., Env], entry: str, message: str) -> None:
    with pytest.raises(CheckLoadError) as caught:
        make_env(checks=[entry, *DEFAULT_CHECKS])
    assert message in str(caught.value) and "\n" not in str(caught.value)
