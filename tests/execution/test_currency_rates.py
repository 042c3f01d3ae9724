"""CurrencyRates: `currencyValue` is units per 1 USD (docs/reference/abp.md §11); rates from the
`currencies` channel (shape undocumented: read tolerantly) and from GET /accounts `currencyInfo`."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.execution.currency import CurrencyRates, MissingRate
from bot.execution.models import Account


def test_convert_is_exact_decimal_in_both_directions() -> None:
    usd = CurrencyRates("USD")
    assert usd.update({"currency": "EUR", "currencyValue": 0.8}) == 1
    # usd = amount / currencyValue: 8 EUR is 10 USD (the old code added 8 "EUR dollars" to USD limits)
    assert usd.convert(Decimal("8.00"), "EUR") == Decimal(10)
    assert usd.convert(Decimal("8.00"), "eur") == Decimal(10)
    assert usd.convert(Decimal("3.50"), "USD") == Decimal("3.50")
    eur = CurrencyRates("EUR")
    eur.set("EUR", "0.8")
    eur.set("GBP", "0.5")
    assert eur.convert(Decimal(10), "USD") == Decimal("8.0")  # amount_B = usd * currencyValue(B)
    assert eur.convert(Decimal(5), "GBP") == Decimal("8.0")  # 5 GBP = 10 USD = 8 EUR
    assert isinstance(eur.convert(Decimal(5), "GBP"), Decimal)


def test_missing_rate_is_never_guessed() -> None:
    usd = CurrencyRates("USD")
    assert usd.convert(Decimal(7), "USD") == Decimal(7)  # same currency needs no rate
    with pytest.raises(MissingRate) as exc:
        usd.convert(Decimal(7), "EUR")
    assert exc.value.currency == "EUR"
    eur = CurrencyRates("EUR")  # the account currency's own rate is needed to leave USD
    with pytest.raises(MissingRate, match="EUR"):
        eur.convert(Decimal(1), "USD")


def test_currencies_payload_shapes_are_read_tolerantly() -> None:
    rates = CurrencyRates("USD")
    taken = rates.update([
        {"currency": "EUR", "currencyValue": 0.92, "updatedAt": "2026-06-01T00:00:00Z"},
        {"currency": "GBP", "currencyValue": "0.79"},
    ])
    assert taken == 2
    assert rates.update({"JPY": {"currency": "JPY", "currencyValue": 151.2}, "CAD": 1.37,
                         "CHF": {"currencyValue": 0.9}}) == 3
    assert rates.update({"currencies": [{"currency": "SEK", "currencyValue": 10.5}], "ts": 1}) == 1
    assert rates.known() == {"USD": Decimal(1), "EUR": Decimal("0.92"), "GBP": Decimal("0.79"),
                             "JPY": Decimal("151.2"), "CAD": Decimal("1.37"), "CHF": Decimal("0.9"),
                             "SEK": Decimal("10.5")}


@pytest.mark.parametrize("payload", [
    {"currency": "EUR", "currencyValue": 0},  # zero: a division by it would crash later
    {"currency": "EUR", "currencyValue": -1},
    {"currency": "EUR", "currencyValue": "NaN"},
    {"currency": "EUR", "currencyValue": None},
    {"currency": "EUR", "currencyValue": True},
    {"currency": "EURO", "currencyValue": 0.9},
    {"currency": "USD", "currencyValue": 1.1},  # USD is the reference: 1
    "EUR 0.9",
    12,
    {"something": "else"},
])
def test_unusable_rates_are_ignored_and_counted(payload: object) -> None:
    rates = CurrencyRates("USD")
    rates.set("EUR", Decimal("0.8"))
    assert rates.update(payload) == 0
    assert rates.ignored_count >= 1
    assert rates.known() == {"USD": Decimal(1), "EUR": Decimal("0.8")}  # nothing overwritten


def test_rates_from_accounts_currency_info() -> None:
    rates = CurrencyRates("USD")
    accounts = [
        Account.model_validate({"bookmaker": "betcris", "username": "a", "currencyId": "EUR",
                                "currencyInfo": {"currency": "EUR", "currencyValue": 0.8}}),
        Account.model_validate({"bookmaker": "pinnacle", "username": "b", "currencyInfo": None}),  # no rate (§7)
        {"bookmaker": "singbet", "username": "c", "currencyInfo": {"currency": "HKD", "currencyValue": 7.8}},
    ]
    assert rates.update_from_accounts(accounts) == 2
    assert rates.convert(Decimal(78), "HKD") == Decimal(10)
    assert rates.convert(Decimal(8), "EUR") == Decimal(10)
