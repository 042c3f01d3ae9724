"""`bot report` in the bot's one currency (docs/reference/abp.md §11): the text header names it,
the JSON carries it, and a bet converted from its account currency is checked against its order
in the bot's currency, its cent of rounding not counted as a fill mismatch."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from bot.ledger.models import SettlementRow
from bot.ledger.report import build_report
from bot.ledger.store import Ledger
from tests.ledger.test_report import _bet, _order, _text

T0 = datetime(2023, 8, 13, 12, 0, tzinfo=UTC)


def _converted_ledger(path: Path) -> Path:
    ledger = Ledger(path)
    try:
        ledger.add_orders([_order("eur", stake="7"), _order("over", stake="10")])
        # 6.47 EUR at 0.923 EUR per USD is 7.0098 USD on a 7 USD order: the venue's rounding to
        # cents, within a cent, not a mismatch. 10.50 on a 10 order is one.
        eur = _bet(1, "eur", stake=str(Decimal("6.47") / Decimal("0.923")))
        eur.venue_currency, eur.venue_stake = "EUR", Decimal("6.47")
        over = _bet(2, "over", stake="10.50")
        over.venue_currency, over.venue_stake = "EUR", Decimal("9.77")
        for bet in (eur, over):
            ledger.upsert_bet(bet)
        ledger.add_settlement(SettlementRow(bet_id=1, request_uuid="eur", strategy="value", status="WON",
                                            stake=eur.placed_stake, amount=Decimal(14), pnl=Decimal(7), at=T0,
                                            venue_currency="EUR", venue_stake=Decimal("6.47"),
                                            venue_amount=Decimal("12.94")))
    finally:
        ledger.close()
    return path


def test_report_names_its_currency_and_checks_converted_fills_in_it(tmp_path: Path) -> None:
    # Old behaviour caught: the header named no currency, and the converted stake 7.0098 on a
    # 7 USD order was reported as a fill above its order stake.
    report = build_report(_converted_ledger(tmp_path / "bot.db"))
    assert report["currency"] == "USD"
    assert report["settled"]["pnl"] == "7.00"
    assert [(m["request_uuid"], m["problem"]) for m in report["checks"]["fill_mismatches"]["first"]] == [
        ("over", "stake")]
    assert "(amounts in USD)" in _text(report).splitlines()[0]
