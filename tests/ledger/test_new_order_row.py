"""`new_order_row` builds the same row as `OrderRow(...)`, and rows built so are independent."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from bot.ledger.models import OrderRow, new_order_row

fields = st.fixed_dictionaries(
    {
        "request_uuid": st.uuids().map(str),
        "signal_id": st.text(min_size=1, max_size=12),
        "strategy": st.text(min_size=1, max_size=12),
        "selection": st.text(min_size=1, max_size=40),
        "order_price": st.floats(min_value=1.01, max_value=1000),
        "stake": st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**6), places=2),
        "status": st.sampled_from(["INTENT", "SENT"]),
    },
    optional={
        "back": st.booleans(),
        "fixture_id": st.none() | st.text(max_size=10),
        "outcome_id": st.none() | st.integers(0, 10**6),
        "bookmakers": st.text(max_size=20),
        "created_at": st.datetimes(timezones=st.just(UTC)),
        "expires_at": st.none() | st.datetimes(timezones=st.just(UTC)),
    },
)


@given(fields)
def test_the_same_row_as_the_constructor(values: dict) -> None:
    assert new_order_row(**values).model_dump() == OrderRow(**values).model_dump()


def test_rows_do_not_share_values() -> None:
    first = new_order_row(request_uuid="a", signal_id="s", strategy="x", selection="k", order_price=2.0,
                          stake=Decimal(5), status="INTENT")
    second = new_order_row(request_uuid="b", signal_id="t", strategy="y", selection="m", order_price=3.0,
                           stake=Decimal(7), status="INTENT")
    first.status, first.created_at = "SENT", datetime(2026, 1, 1, tzinfo=UTC)
    assert (second.request_uuid, second.status, second.created_at) == ("b", "INTENT", None)
    assert (first.request_uuid, first.status, first.stake) == ("a", "SENT", Decimal(5))
    assert new_order_row(request_uuid="c", signal_id="u", strategy="z", selection="n", order_price=2.0,
                         stake=Decimal(1), status="INTENT").created_at is None
