"""Exchange rates and the bot's one currency (docs/reference/abp.md §11).

ABP keeps a bet's `placedStake` and `settlementAmount` in the bookmaker account's currency
(`placedCurrency`), while risk limits and PnL are kept in one currency, the bot's
(`execution.currency`). `currencyValue` is units of a currency per 1 USD (USD = 1), so
`usd = amount / currencyValue(A)` and `amount_B = usd * currencyValue(B)`. Rates come from the
`currencies` WebSocket channel and from `currencyInfo {currency, currencyValue}` on GET /accounts.

The shape of a `currencies` payload is not documented (§13.2 says only "exchange rates"), so
`update` reads what it can and logs what it ignores. A rate that is unknown is never guessed:
`convert` raises `MissingRate`, and the caller fails closed.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from loguru import logger

USD = "USD"
_MAX_DEPTH = 3  # wrappers around the rate entries we look into ({"data": {"EUR": {...}}})
_NOT_RATES = frozenset({"type", "ts", "updatedAt", "event", "channel", "seq"})  # expected beside rates
log = logger.bind(stage="currency")


class MissingRate(LookupError):
    """No rate is known for `currency`: an amount in it cannot be converted."""

    def __init__(self, currency: str) -> None:
        super().__init__(f"no exchange rate known for {currency}")
        self.currency = currency


class CurrencyRates:
    """Units per 1 USD of each known currency; converts into `account_currency`."""

    def __init__(self, account_currency: str) -> None:
        self.account_currency = _code(account_currency) or USD
        self._rates: dict[str, Decimal] = {USD: Decimal(1)}
        self.ignored_count = 0

    def rate(self, currency: str) -> Decimal | None:
        """Units of `currency` per 1 USD, or None when unknown."""
        return self._rates.get(_code(currency) or "")

    def known(self) -> dict[str, Decimal]:
        return dict(self._rates)

    def set(self, currency: str, value: Any) -> bool:
        """Take one rate; returns False (logged) when it is not a usable one."""
        code, rate = _code(currency), _positive(value)
        if code is None or rate is None:
            self._ignore("unusable rate", {"currency": currency, "currencyValue": value})
            return False
        if code == USD:
            if rate != 1:
                self._ignore("USD is the reference currency (1 per USD)", {"currency": code, "currencyValue": value})
                return False
            return True
        if self._rates.get(code) != rate:
            log.info("exchange rate {} = {} per USD", code, rate)
        self._rates[code] = rate
        return True

    def update(self, payload: Any) -> int:
        """Take the rates of a `currencies` channel payload; returns how many were taken.

        Read: {"currency": "EUR", "currencyValue": 0.92}; a list of such; a dict of such keyed
        by code ({"EUR": {"currencyValue": 0.92}} or {"EUR": 0.92}); any of these inside a wrapper dict
        ({"currencies": [...]}). Everything else is logged and ignored."""
        return self._walk(payload, None, 0)

    def update_from_accounts(self, accounts: Iterable[Any]) -> int:
        """Take `currencyInfo {currency, currencyValue}` of GET /accounts rows (`Account`
        models or raw dicts); a null `currencyInfo` (no rate available, §7) is skipped."""
        taken = 0
        for account in accounts:
            extra = account if isinstance(account, dict) else (getattr(account, "model_extra", None) or {})
            info = extra.get("currencyInfo")
            if isinstance(info, dict) and "currency" in info:
                taken += self.set(str(info["currency"]), info.get("currencyValue"))
        return taken

    def convert(self, amount: Decimal, currency: str) -> Decimal:
        """`amount` in `currency` expressed in the account currency (exact Decimal division).

        Raises:
            MissingRate: the rate of `currency` or of the account currency is unknown.
        """
        code = _code(currency) or currency
        if code == self.account_currency:
            return amount
        source, target = self.rate(code), self.rate(self.account_currency)
        if source is None:
            raise MissingRate(code)
        if target is None:
            raise MissingRate(self.account_currency)
        return amount / source * target

    def _walk(self, node: Any, key: str | None, depth: int) -> int:
        if isinstance(node, list):
            return sum(self._walk(item, key, depth) for item in node)
        if isinstance(node, dict) and "currency" in node:
            return int(self.set(str(node["currency"]), node.get("currencyValue")))
        if isinstance(node, dict) and "currencyValue" in node and key is not None:
            return int(self.set(key, node["currencyValue"]))  # {"EUR": {"currencyValue": 0.92}}
        if isinstance(node, dict) and depth < _MAX_DEPTH:
            return sum(self._walk(value, str(name), depth + 1) for name, value in node.items())
        if key is not None and _code(key) is not None and _positive(node) is not None:
            return int(self.set(key, node))  # {"EUR": 0.92}
        if key not in _NOT_RATES:
            self._ignore("not a rate", {key: node} if key is not None else node)
        return 0

    def _ignore(self, why: str, raw: Any) -> None:
        self.ignored_count += 1
        log.warning("currencies: ignored ({}): {:.200}", why, repr(raw))


def _code(value: Any) -> str | None:
    """An ISO-4217-like code, upper case; None for anything else."""
    code = value.strip().upper() if isinstance(value, str) else ""
    return code if len(code) == 3 and code.isalpha() else None


def _positive(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        rate = Decimal(str(value))
    except InvalidOperation:
        return None
    return rate if rate.is_finite() and rate > 0 else None
