"""Exchange value, back and lay, on one exchange's own book: an example of reading exchange
quotes (best back and lay with their sizes, bot.types.Ladder) through the strategy API
(docs/architecture.md, "Strategies"; odds maths in bot/market/odds.py).

Per market of `bookmaker` (default `betfair-ex`, the Betfair Exchange Stream reader's), once every
ACTIVE runner (every quote not suspended: a removed runner is suspended) has a usable best back
price b_i, the runners' fair probabilities are the best backs de-vigged together
(bot.market.odds.no_vig_probabilities with `devig`; multiplicative: p_i = (1/b_i) / sum_j(1/b_j)),
fair price f_i = 1 / p_i. Then, per runner:
- back when b_i > f_i x (1 + min_edge): edge = p_i x b_i - 1 (expected value per unit stake);
- lay (Side.LAY) when its best lay l_i (the quote `layable`) < f_i x (1 - min_edge):
  edge = 1 - p_i x l_i (expected value per unit of the backer's stake laid).
The stake (the backer's stake for a lay) is `stake`, capped by the size offered at that level
(`ladder.back[0]` / `ladder.lay[0]`, rounded down to cents); below `min_stake` nothing is signalled.
The signal's price is b_i or l_i and `min_price` is left at it: a back takes no less, a lay no
more (risk counts a lay's liability at max(price, min_price), bot/risk/positions.py).
With a multiplicative de-vig, f_i = b_i x sum_j(1/b_j): every runner is backed at once when the
backs sum to under 1 / (1 + min_edge), and a runner is laid when its lay-to-back ratio l_i / b_i
is under sum_j(1/b_j) x (1 - min_edge); `power` / `shin` move fair prices between favourites and
longshots. The reference assumes one winner: `win` and `match_odds` markets (not `place`, whose
probabilities sum to the number of places).

Skipped: a market with fewer than two ACTIVE runners (a suspended market has none), any ACTIVE
runner without a usable back price (an incomplete book), best backs whose overround
(bot.market.odds.overround: sum(1/b_i) - 1) is above `max_overround` (a thin book, e.g. before
the market forms, whose fair prices mean little), a price outside `min_price` ..
`max_price`, a market past its start time when `pre_match_only` (Betfair's `marketTime`: in
play). One signal per (runner, side) per price: an unchanged price is not signalled again,
across restarts too (`on_start` reads this strategy's signals from the ledger).
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

from pydantic import Field, model_validator

from bot.market.odds import DevigMethod, OddsError, expected_value, no_vig_probabilities, overround
from bot.strategy.api import Interests, Strategy, StrategyContext, StrategyParams
from bot.types import FixtureKey, MarketKey, OddsUpdate, Selection, Side, Signal

CENT = Decimal("0.01")


class ExchangeStrategy(Strategy):
    """Back or lay an exchange's runners against the no-vig fair prices of its own best backs."""

    class Params(StrategyParams):
        bookmaker: str = Field("betfair-ex", description="the exchange whose book is read and traded")
        min_edge: float = Field(0.02, ge=0, lt=1, description="minimum EV per unit stake (0.02 = 2%)")
        stake: Decimal = Field(Decimal(10), gt=0, description="stake per signal (a lay: the backer's stake)")
        min_stake: Decimal = Field(Decimal(2), ge=0, description="smaller stakes (capped by the size offered) "
                                   "are not signalled")
        back: bool = Field(True, description="signal backs")
        lay: bool = Field(True, description="signal lays")
        devig: DevigMethod = Field("multiplicative", description="how the best backs' margin is removed")
        max_overround: float = Field(0.05, ge=0, description="skip a market whose best backs' overround "
                                     "(sum of 1 / price - 1) is above this: a thin book's fair prices mean little")
        min_price: float = Field(1.01, gt=1.0, description="lowest price to back or lay")
        max_price: float = Field(50.0, gt=1.0, description="highest price to back or lay (a lay's liability grows "
                                 "with it)")
        sports: list[str] = Field([], description="sports to watch; empty = all")
        markets: list[str] = Field(["win", "match_odds"], description="market types to watch (one winner each)")
        expiry_seconds: float = Field(10.0, gt=0, description="a signal expires after this")
        pre_match_only: bool = Field(True, description="ignore a market once its start time has passed (in play)")

        @model_validator(mode="after")
        def _price_range(self) -> ExchangeStrategy.Params:
            if self.min_price >= self.max_price:
                raise ValueError("min_price must be below max_price")
            return self

    def __init__(self, ctx: StrategyContext) -> None:
        super().__init__(ctx)
        self._signalled: dict[tuple[str, Side], float] = {}  # (Selection.key, side) -> last price signalled

    def on_start(self, **kwargs: Any) -> None:
        """The prices signalled in earlier runs on this ledger, per runner and side (the latest wins)."""
        for row in self.ctx.signals():
            self._signalled[(row.selection, Side(row.side))] = row.price

    def interests(self) -> Interests:
        p = self.params
        return Interests(sports=frozenset(p.sports), bookmakers=frozenset({p.bookmaker}),
                         markets=frozenset(p.markets))

    def on_odds(self, *, update: OddsUpdate, **kwargs: Any) -> list[Signal]:
        return self._evaluate(update.selection.fixture, update.selection.market)

    def on_market(self, *, fixture: FixtureKey, market: MarketKey, **kwargs: Any) -> list[Signal]:
        return self._evaluate(fixture, market)

    def _stake(self, size: float) -> Decimal | None:
        """`stake` capped by the size offered (rounded down to cents); None below `min_stake`."""
        p = self.params
        stake = min(p.stake, Decimal(str(size)).quantize(CENT, rounding=ROUND_DOWN))
        return stake if stake >= p.min_stake and stake > 0 else None

    def _evaluate(self, fixture: FixtureKey, market: MarketKey) -> list[Signal]:
        """The backs and lays of one market on the current board, runner by runner in the book's
        order, the back before the lay."""
        p = self.params
        if p.pre_match_only and self.ctx.now() >= fixture.start_time:
            return []
        active = [(outcome, q) for outcome, q in self.ctx.book.market(fixture, market, p.bookmaker).items()
                  if not q.suspended]
        if len(active) < 2 or not all(q.usable for _, q in active):
            return []
        backs = [q.price for _, q in active if q.price is not None]
        if overround(backs) > p.max_overround:
            return []
        try:
            fair = no_vig_probabilities(backs, p.devig)
        except OddsError:
            return []
        out: list[Signal] = []
        for (outcome, quote), probability in zip(active, fair, strict=True):
            ladder = quote.ladder
            if ladder is None:  # a sportsbook quote under this name: nothing to size a stake by
                continue
            fair_price = 1.0 / probability
            wanted: list[tuple[Side, float, float, float]] = []  # side, price, size, edge
            if p.back and ladder.back:
                price, size = ladder.back[0]
                if price > fair_price * (1 + p.min_edge):
                    wanted.append((Side.BACK, price, size, expected_value(price, probability)))
            if p.lay and quote.layable:  # not suspended, not stale, a lay offered
                price, size = ladder.lay[0]
                if price < fair_price * (1 - p.min_edge):
                    wanted.append((Side.LAY, price, size, 1 - probability * price))
            for side, price, size, edge in wanted:
                if not p.min_price <= price <= p.max_price:
                    continue
                stake = self._stake(size)
                if stake is None:
                    continue
                selection = Selection(fixture, market, outcome)
                if self._signalled.get((selection.key, side)) == price:
                    continue
                self._signalled[(selection.key, side)] = price
                out.append(self.ctx.signal(
                    selection, side=side, stake=stake, price=price, bookmakers=(p.bookmaker,), edge=edge,
                    expires_in=p.expiry_seconds,
                    reason=f"exchange {side.value}: {price} at {p.bookmaker} vs fair {fair_price:.3f} "
                    f"(its best backs, {p.devig}), edge {edge:.2%}, {size:g} offered",
                ))
        return out
