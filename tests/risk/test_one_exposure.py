"""One exposure (docs/architecture.md, "Risk"): the risk manager restored from a ledger, `bot risk
status --json`, `StrategyContext.exposure()` and `bot report --json` show the same figures, and
they are the figures worked out by hand below from the fixture's stakes and prices.

The ledger is a real SQLite file with back and lay orders: in flight (some partly filled),
filled with open bets, cancelled with a bet, declined, settled, voided, and one PARTIALLY_FILLED
order long past its expiry (no longer open: only its bet counts).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app as bot_app
from bot.clock import WallClock
from bot.ledger.models import BetRow, OrderRow
from bot.ledger.store import Ledger
from bot.market.book import OddsBook
from bot.risk.cli import app as risk_app
from bot.risk.config import RiskConfig
from bot.risk.manager import RiskManager
from bot.strategy.api import StrategyContext, StrategyParams

# Worked out by hand (back: unfilled stake / bet stake; lay: (price - 1) x stake):
#   value  A back 50 @2.0 PENDING, 20 filled:      unfilled 30            + bet 20            = 50
#          B lay 10 @3.5 FILLED, bet 10 @3.4:                               bet (3.4-1)x10 = 24
#          C back 8 CANCELLED, bet 4 @1.9 stands:                           bet 4
#          D back 25 DECLINED:                                              0
#          E back 100 PARTIALLY_FILLED, expired 3 h ago, bet 10 @2.2:      unfilled not open  + bet 10
#                                                                                          value = 88
#   arb    F lay 20 @2.5 PARTIALLY_FILLED, 8 filled: unfilled (2.5-1)x12 = 18 + bet (2.5-1)x8 = 12
#          G back 15 @1.8 SENT:                     unfilled 15
#          H back 5 FILLED, its bet settled WON:    0
#          I lay 6 @3.0 FILLED, its bet VOID:       0
#          J lay 12 @4.0 INTENT:                    unfilled (4.0-1)x12 = 36
#                                                                                            arb = 81
EXPECTED = {"value": Decimal(88), "arb": Decimal(81)}
EXPECTED_TOTAL = Decimal(169)
NOW = datetime.now(UTC)

# (name, strategy, back, order_price, stake, status, filled, expires_at,
#  bets: [(bet_id, stake, price, status, settled)])
ORDERS = [
    ("A", "value", True, 2.0, "50", "PENDING", "20", None, [(1, "20", 2.1, "PLACED", "UNSETTLED")]),
    ("B", "value", False, 3.5, "10", "FILLED", "10", None, [(2, "10", 3.4, "CONFIRMED", "UNSETTLED")]),
    ("C", "value", True, 1.9, "8", "CANCELLED", "4", None, [(3, "4", 1.9, "CONFIRMED", "UNSETTLED")]),
    ("D", "value", True, 2.0, "25", "DECLINED", "0", None, []),
    ("E", "value", True, 2.2, "100", "PARTIALLY_FILLED", "10", NOW - timedelta(hours=3),
     [(4, "10", 2.2, "CONFIRMED", "UNSETTLED")]),
    ("F", "arb", False, 2.5, "20", "PARTIALLY_FILLED", "8", None, [(5, "8", 2.5, "PLACED", "UNSETTLED")]),
    ("G", "arb", True, 1.8, "15", "SENT", "0", None, []),
    ("H", "arb", True, 2.0, "5", "FILLED", "5", None, [(6, "5", 2.0, "CONFIRMED", "WON")]),
    ("I", "arb", False, 3.0, "6", "FILLED", "6", None, [(7, "6", 3.0, "VOID", "UNSETTLED")]),
    ("J", "arb", False, 4.0, "12", "INTENT", "0", None, []),
]


@pytest.fixture
def ledger_file(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    ledger = Ledger(state / "bot.db")
    try:
        for name, strategy, back, price, stake, status, filled, expires_at, bets in ORDERS:
            ledger.add_orders([OrderRow(
                request_uuid=f"uuid-{name}", signal_id=f"sig-{name}", strategy=strategy,
                selection=f"NFL|H{name} vs A{name}|2030-01-01T18:00Z|moneyline/game|home", sport="NFL",
                fixture=f"NFL|H{name} vs A{name}|2030-01-01T18:00Z", bookmakers="bookA", back=back,
                order_price=price, stake=Decimal(stake), filled_stake=Decimal(filled), status=status,
                expires_at=expires_at,
            )])
            for bet_id, bet_stake, bet_price, bet_status, settled in bets:
                ledger.upsert_bet(BetRow(bet_id=bet_id, request_uuid=f"uuid-{name}", bookmaker="bookA",
                                         placed_stake=Decimal(bet_stake), placed_price=bet_price,
                                         bet_status=bet_status, settlement_status=settled))
    finally:
        ledger.close()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"state_dir": "state",
                                                          "risk": {"day_timezone": "America/New_York"}}))
    return state / "bot.db"


def _decimals(figures: dict[str, str]) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in figures.items()}


def test_risk_status_strategy_and_report_show_the_same_exposure(ledger_file: Path) -> None:
    config = ledger_file.parent.parent / "config.yaml"
    clock = WallClock()
    ledger = Ledger(ledger_file, clock)
    try:
        risk = RiskManager(RiskConfig(), clock=clock, book=OddsBook(clock), ledger=ledger, requires_mapping=False,
                           state_dir=ledger_file.parent)
        risk_figures = risk.exposure()
        contexts = {name: StrategyContext(name, StrategyParams(), book=OddsBook(clock), clock=clock, ledger=ledger)
                    for name in EXPECTED}
        strategy_figures = {name: ctx.exposure() for name, ctx in contexts.items()}
        positions = {name: [b.bet_id for b in ctx.positions()] for name, ctx in contexts.items()}
    finally:
        ledger.close()

    runner = CliRunner()
    status_run = runner.invoke(risk_app, ["status", "--json", "-c", str(config)])
    assert status_run.exit_code == 0, status_run.output
    status = json.loads(status_run.stdout)["exposure"]
    report_run = runner.invoke(bot_app, ["report", "--json", "-c", str(config)])
    assert report_run.exit_code == 0, report_run.output
    report = json.loads(report_run.stdout)["exposure"]

    assert risk_figures["total"]["total"] == EXPECTED_TOTAL
    assert risk_figures["strategy"] == EXPECTED
    assert strategy_figures == EXPECTED
    assert Decimal(status["total"]) == EXPECTED_TOTAL and _decimals(status["by_strategy"]) == EXPECTED
    assert Decimal(report["total"]) == EXPECTED_TOTAL and _decimals(report["by_strategy"]) == EXPECTED
    assert status == report  # the same strings, from the same code
    assert risk.snapshot()["exposure_by_strategy"] == status["by_strategy"]
    # the open bets behind them: settled (6) and void (7) bets are not positions
    assert positions == {"value": [1, 2, 3, 4], "arb": [5]}


def test_status_and_report_count_the_same_open_orders_and_bets(ledger_file: Path) -> None:
    """One definition of an open order: A, F, G, J (E is a PARTIALLY_FILLED order past expiry)."""
    runner = CliRunner()
    config = str(ledger_file.parent.parent / "config.yaml")
    status = json.loads(runner.invoke(risk_app, ["status", "--json", "-c", config]).stdout)
    report = json.loads(runner.invoke(bot_app, ["report", "--json", "-c", config]).stdout)
    assert status["open_orders"] == report["orders"]["open"] == 4
    assert status["open_bets"] == report["fills"]["open_bets"] == 5
