"""`Ledger.settled_pnl(since)` is kept as running sums per `since` (bot/ledger/store.py); a `since`
before every settlement takes the total's sum. Checked against a plain sum of the settlements over
random sequences of settlements (any time order) and queries; and `bets_changed` against a plain
filter."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.ledger.models import BetRow, SettlementRow
from bot.ledger.store import Ledger

T0 = datetime(2025, 11, 16, tzinfo=UTC)
op = st.one_of(
    st.tuples(st.just("settle"), st.integers(-5, 30), st.integers(-500, 500)),
    st.tuples(st.just("query"), st.one_of(st.none(), st.integers(-10, 35))),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(op, min_size=1, max_size=30))
def test_settled_sums_equal_a_plain_sum(ops: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        ledger = Ledger(Path(folder) / "bot.db")
        ledger.settled_pnl()  # the total is kept from the start, as the risk manager does
        bet = 0
        for kind, *args in ops:
            if kind == "settle":
                bet += 1
                hour, cents = args
                pnl = Decimal(cents) / 100
                ledger.add_settlement(SettlementRow(
                    bet_id=bet, request_uuid=f"r{bet}", strategy="s", status="WON", stake=Decimal(10),
                    amount=Decimal(10) + pnl, pnl=pnl, at=T0 + timedelta(hours=hour)))
            else:
                since = None if args[0] is None else T0 + timedelta(hours=args[0])
                want = sum((s.pnl for s in ledger.settlements() if since is None or s.at >= since), Decimal(0))  # type: ignore[operator]
                assert ledger.settled_pnl(since) == want, (since, ops)
        ledger.close()


def test_bets_changed_are_the_new_and_the_recently_updated(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "bot.db")
    for i in range(1, 7):
        ledger.upsert_bet(BetRow(bet_id=i, request_uuid=f"r{i}", bookmaker="b", placed_stake=Decimal(1),
                                 placed_price=2.0, placed_currency="USD", bet_status="PLACED"))
    rows = {b.bet_id: b for b in ledger.bets()}
    since = rows[3].updated_at
    assert since is not None
    got = ledger.bets_changed(after_id=rows[5].id or 0, since=since)
    assert [b.bet_id for b in got] == [b for b in range(1, 7) if b >= 6 or (rows[b].updated_at or T0) >= since]
    assert [b.bet_id for b in ledger.bets_changed(after_id=rows[4].id or 0, since=None)] == [5, 6]
    ledger.close()
