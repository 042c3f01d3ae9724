"""The daily PnL summary counts the settlements of the trading day in its zone, read by time range
from the ledger, not every settlement the ledger holds (bot/engine/alerts.py `daily_summary`)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.clock import ReplayClock
from bot.engine.alerts import OperatorAlerts
from bot.ledger.models import SettlementRow
from bot.ledger.store import Ledger
from bot.notify import Kind


class Capture:
    def __init__(self) -> None:
        self.sent: list[tuple[Kind, Any]] = []

    def send(self, kind: Kind, message: Any) -> None:
        self.sent.append((kind, message))


def _settle(ledger: Ledger, bet_id: int, at: datetime, stake: str, pnl: str) -> None:
    amount = Decimal(stake) + Decimal(pnl)
    ledger.add_settlement(SettlementRow(bet_id=bet_id, request_uuid=f"r{bet_id}", strategy="s", status="WON",
                                        stake=Decimal(stake), amount=amount, pnl=Decimal(pnl), at=at, currency="EUR"))


def test_the_summary_counts_the_local_trading_day_only(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "bot.db")
    # Europe/Berlin is UTC+1 in November: its 2025-11-16 runs from 15 Nov 23:00 to 16 Nov 23:00 UTC
    _settle(ledger, 1, datetime(2025, 11, 15, 22, 59, tzinfo=UTC), "10", "5")   # the 15th in Berlin
    _settle(ledger, 2, datetime(2025, 11, 15, 23, 0, tzinfo=UTC), "10", "10")   # the 16th, first instant
    _settle(ledger, 3, datetime(2025, 11, 16, 12, 0, tzinfo=UTC), "30", "-30")  # the 16th
    _settle(ledger, 4, datetime(2025, 11, 16, 23, 0, tzinfo=UTC), "10", "7")    # the 17th
    notifier = Capture()
    alerts = OperatorAlerts(notifier, ReplayClock(datetime(2025, 11, 16, 22, 55, tzinfo=UTC)),  # type: ignore[arg-type]
                            "Europe/Berlin", lambda *_: None)
    alerts.daily_summary(ledger, "2025-11-16", Decimal(-20), "EUR")
    [(kind, message)] = notifier.sent
    assert kind is Kind.DAILY_PNL
    text = str(message)
    assert "Bets settled: 2" in text and "ROI on settled stake: -50.00 %" in text, text
    assert [s.bet_id for s in ledger.settlements(since=datetime(2025, 11, 16, tzinfo=UTC))] == [3, 4]
    ledger.close()
