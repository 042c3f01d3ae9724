"""The dashboard's bounded reads (bot/ledger/store.py): newest first, at most `limit` rows, the
reason filter, each decision with its signal's selection, and order counts per status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bot.clock import ReplayClock
from bot.ledger.models import BetRow, OrderRow
from bot.ledger.store import Ledger
from bot.types import Decision, FixtureKey, MarketKey, Selection, Side, Signal, Verdict

AT = datetime(2025, 11, 16, 12, tzinfo=UTC)
GAME = FixtureKey("NFL", "Chicago Bears", "Minnesota Vikings", AT + timedelta(hours=6))


def _signal(n: int, outcome: str) -> Signal:
    return Signal(f"s{n}", "value", Selection(GAME, MarketKey("moneyline"), outcome), Side.BACK, Decimal(10), 2.0,
                  1.9, ("fanduel",), AT)


def test_recent_reads_are_newest_first_bounded_filtered_and_joined(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "bot.db", clock=ReplayClock(AT))
    for n in range(5):
        sig = _signal(n, "home" if n % 2 else "away")
        ledger.record_signal(sig)
        verdict, reason = (Verdict.REJECTED, "MAX_STAKE") if n % 2 else (Verdict.APPROVED, None)
        ledger.record_decision(Decision(sig, verdict, Decimal(10) if reason is None else Decimal(0), reason, at=AT))
    ledger.add_orders([OrderRow(request_uuid=f"u{n}", signal_id=f"s{n}", strategy="value", selection="x",
                                order_price=2.0, stake=Decimal(10), status="FILLED" if n else "INTENT")
                       for n in range(3)])
    for n in range(3):
        ledger.upsert_bet(BetRow(bet_id=n + 1, request_uuid=f"u{n}", bookmaker="fanduel", placed_stake=Decimal(10),
                                 placed_price=2.0, bet_status="PLACED"))

    assert [o.request_uuid for o in ledger.recent_orders(2)] == ["u2", "u1"]
    assert [b.bet_id for b in ledger.recent_bets(5)] == [3, 2, 1]
    rejected = ledger.recent_decisions(10, "MAX_STAKE")
    assert [d.signal_id for d, _ in rejected] == ["s3", "s1"]
    assert all(sel.endswith("|home") for _, sel in rejected)
    assert [d.signal_id for d, _ in ledger.recent_decisions(2)] == ["s4", "s3"]
    assert ledger.order_status_counts() == {"FILLED": 2, "INTENT": 1}
    ledger.close()
