"""Value betting: back when a bookmaker's price beats the no-vig fair price of a reference by at
least `min_edge` (docs/architecture.md, "Strategies"; odds maths in bot/market/odds.py).

Reference (fair probabilities of a complete market, de-vigged with bot.market.odds):
- `sharp_books` set (e.g. [pinnacle], or [lowvig, betonlineag] for US books): the average fair
  probability over those of them with a complete, usable market; none usable -> no bet;
- `sharp_books` empty: the consensus of all books, each book's market de-vigged on its own and
  the fair probabilities averaged (the offering book left out when `consensus_exclude_offer`);
  at least `min_consensus_books` books needed.
Stale or suspended reference quotes make a market incomplete, so it is skipped.

edge = fair_probability x price - 1 (expected value per unit stake). Stake = bankroll x Kelly
fraction x `kelly_multiplier`, capped by `max_kelly_fraction` of bankroll and `max_stake`, rounded
down to cents. One signal per (selection, bookmaker) per price: an unchanged price is not
signalled again, across restarts too (`StrategyContext.last_price`, seeded from the ledger).

Each changed market is evaluated once, on the complete new board: `on_market` for a snapshot or
batch, `on_odds` for a single update (docs/architecture.md, Pipeline and Strategies). `markets`
defaults to moneyline and 1x2 (3-way football: The Odds API h2h with a Draw); a name the feeds do
not produce (e.g. the Odds API key "h2h") is warned about at load (bot/strategy/host.py).
"""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal
from typing import Any

from pydantic import Field, model_validator

from bot.market.odds import DevigMethod, OddsError, expected_value, kelly_fraction, no_vig_probabilities
from bot.strategy.api import Interests, Strategy, StrategyParams
from bot.types import FixtureKey, MarketKey, OddsUpdate, Selection, Signal

CENT = Decimal("0.01")


class ValueStrategy(Strategy):
    class Params(StrategyParams):
        min_edge: float = Field(0.03, ge=0, lt=1, description="minimum EV per unit stake (0.03 = 3%)")
        sharp_books: list[str] = Field([], description="reference books; empty = consensus of all")
        min_consensus_books: int = Field(3, ge=1, description="books a consensus needs (no sharp_books)")
        consensus_exclude_offer: bool = Field(True, description="leave the offering book out of the consensus")
        devig: DevigMethod = Field("multiplicative", description="how the margin is removed")
        bookmakers: list[str] = Field([], description="books to bet at; empty = all but sharp_books")
        sports: list[str] = Field([], description="sports to watch; empty = all")
        markets: list[str] = Field(["moneyline", "1x2"], description="market types to watch "
                                   "(moneyline, 1x2, spread, total, team_total)")
        bankroll: Decimal = Field(Decimal(1000), gt=0, description="Kelly stakes are fractions of it")
        kelly_multiplier: float = Field(0.25, gt=0, le=1, description="fractional Kelly")
        max_kelly_fraction: float = Field(0.05, gt=0, le=1, description="cap, fraction of bankroll")
        max_stake: Decimal = Field(Decimal(50), gt=0, description="stake cap per signal")
        min_stake: Decimal = Field(Decimal(1), ge=0, description="smaller Kelly stakes are not signalled")
        min_price: float = Field(1.05, gt=1.0, description="lowest price to back")
        max_price: float = Field(10.0, gt=1.0, description="highest price to back")
        expiry_seconds: float = Field(30.0, gt=0, description="a signal expires after this")
        pre_match_only: bool = Field(
            True, description="ignore prices once the fixture has kicked off (in-play prices from a "
            "polled feed lag the game; bet them only with a fast in-play feed)"
        )

        @model_validator(mode="after")
        def _price_range(self) -> ValueStrategy.Params:
            if self.min_price >= self.max_price:
                raise ValueError("min_price must be below max_price")
            return self

    def interests(self) -> Interests:
        # every bookmaker is needed for the reference, so books are not filtered here
        return Interests(sports=frozenset(self.params.sports), markets=frozenset(self.params.markets))

    def _fair(self, fixture: FixtureKey, market: MarketKey, books: list[str]) -> dict[str, dict[str, float]]:
        """bookmaker -> outcome -> fair probability, for books with a complete usable market."""
        boards = {b: self.ctx.book.market(fixture, market, b) for b in books}
        outcomes = set().union(*(board.keys() for board in boards.values()))
        if len(outcomes) < 2:
            return {}
        order = sorted(outcomes)
        fair: dict[str, dict[str, float]] = {}
        for b, board in boards.items():
            quotes = [board.get(o) for o in order]
            if any(q is None or not q.usable for q in quotes):
                continue
            try:
                probs = no_vig_probabilities([q.price for q in quotes], self.params.devig)  # type: ignore[union-attr,misc]
            except OddsError:
                continue
            fair[b] = dict(zip(order, probs, strict=True))
        return fair

    def _reference(self, fair: dict[str, dict[str, float]], offer: str) -> dict[str, float] | None:
        p = self.params
        if p.sharp_books:
            refs = [fair[b] for b in p.sharp_books if b in fair]
            if not refs:
                return None
        else:
            refs = [f for b, f in fair.items() if not (p.consensus_exclude_offer and b == offer)]
            if len(refs) < p.min_consensus_books:
                return None
        return {o: sum(r[o] for r in refs) / len(refs) for o in refs[0]}

    def _stake(self, price: float, probability: float) -> Decimal:
        p = self.params
        fraction = min(kelly_fraction(price, probability) * p.kelly_multiplier, p.max_kelly_fraction)
        stake = (p.bankroll * Decimal(str(fraction))).quantize(CENT, rounding=ROUND_DOWN)
        return min(stake, p.max_stake)

    def on_odds(self, *, update: OddsUpdate, **kwargs: Any) -> list[Signal]:
        return self._evaluate(update.selection.fixture, update.selection.market)

    def on_market(self, *, fixture: FixtureKey, market: MarketKey, **kwargs: Any) -> list[Signal]:
        return self._evaluate(fixture, market)

    def _evaluate(self, fixture: FixtureKey, market: MarketKey) -> list[Signal]:
        """Every offer of one market on the current board with at least `min_edge`, not yet
        signalled at its price."""
        if self.params.pre_match_only and self.ctx.now() >= fixture.start_time:
            return []
        books = self.ctx.book.bookmakers(fixture, market)
        fair = self._fair(fixture, market, books)
        if not fair:
            return []
        p = self.params
        offers = p.bookmakers or [b for b in books if b not in p.sharp_books]
        out: list[Signal] = []
        for offer in offers:
            reference = self._reference(fair, offer)
            if reference is None:
                continue
            for outcome, quote in self.ctx.book.market(fixture, market, offer).items():
                prob = reference.get(outcome)
                if prob is None or not quote.usable or quote.price is None:
                    continue
                price = quote.price
                if not p.min_price <= price <= p.max_price:
                    continue
                edge = expected_value(price, prob)
                if edge < p.min_edge:
                    continue
                selection = Selection(fixture, market, outcome)
                if self.ctx.last_price(selection, offer) == price:  # remembered across restarts
                    continue
                stake = self._stake(price, prob)
                if stake < p.min_stake or stake <= 0:
                    continue
                out.append(
                    self.ctx.signal(
                        selection,
                        stake=stake,
                        price=price,
                        bookmakers=(offer,),
                        edge=edge,
                        expires_in=p.expiry_seconds,
                        reason=f"value: {price} at {offer} vs fair {1 / prob:.3f} "
                        f"({'/'.join(p.sharp_books) or 'consensus'}), edge {edge:.2%}",
                    )
                )
        return out
