"""Value betting: back when a bookmaker's price beats the no-vig fair price of a reference by at
least `min_edge` (docs/architecture.md, "Strategies"; odds maths in bot/market/odds.py).

Reference (fair probabilities of a complete market, de-vigged with bot.market.odds):
- `sharp_books` set (e.g. [pinnacle], or [lowvig, betonlineag] for US books): the average fair
  probability over those of them with a complete, usable market; none usable -> no bet;
- `sharp_books` empty: the consensus of all books, each book's market de-vigged on its own and
  the fair probabilities averaged (the offering book left out when `consensus_exclude_offer`);
  at least `min_consensus_books` books needed. The mean is exact (correctly rounded from the
  book's fixed-point sums, bot/market/book.py `Consensus`), whatever order the books came in.
Stale or suspended reference quotes make a market incomplete, so it is skipped.

edge = fair_probability x price - 1 (expected value per unit stake). Stake = bankroll x Kelly
fraction x `kelly_multiplier`, capped by `max_kelly_fraction` of bankroll and `max_stake`, rounded
down to cents. One signal per (selection, bookmaker) per price: an unchanged price is not
signalled again, across restarts too (`StrategyContext.last_price`, seeded from the ledger).

Each changed market is evaluated once, on the complete new board: `on_market` for a snapshot or
batch, `on_odds` for a single update (docs/architecture.md, Pipeline and Strategies).
Cost: the fair probabilities and the consensus come from the book's derived state, kept up to
date for the books an update touched (`OddsBook.consensus`), and only quotes priced high enough
to reach `min_edge` are looked at (`OddsBook.quotes_between`), so an update costs
O(outcomes x changed books) plus the few quotes near value, not a scan of every book
(bench/strategy_books.py).

`markets` defaults to moneyline and 1x2 (3-way football: The Odds API h2h with a Draw); a name
the feeds do not produce (e.g. the Odds API key "h2h") is warned about at load
(bot/strategy/host.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from pydantic import Field, model_validator

from bot.market.book import Consensus
from bot.market.odds import DevigMethod, expected_value, kelly_fraction
from bot.strategy.api import Interests, Strategy, StrategyContext, StrategyParams
from bot.types import FixtureKey, MarketKey, OddsUpdate, Selection, Signal

CENT = Decimal("0.01")

_Hit = tuple[str, str, float, float, float, Decimal, Selection]
"""A signal to make: offer, outcome, price, reference probability, edge, stake, selection."""


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

        min_minutes_to_start: float = Field(
            0.0, ge=0, description="ignore prices this close to kickoff (minutes; 0 = up to kickoff): e.g. 60 "
            "bets football-data's opening board, not its closing one"
        )

        @model_validator(mode="after")
        def _price_range(self) -> ValueStrategy.Params:
            if self.min_price >= self.max_price:
                raise ValueError("min_price must be below max_price")
            return self

    def __init__(self, ctx: StrategyContext) -> None:
        super().__init__(ctx)
        self._last: dict[tuple[FixtureKey, MarketKey], dict[tuple[str, str], float]] = {}

    def interests(self) -> Interests:
        # every bookmaker is needed for the reference, so books are not filtered here
        return Interests(sports=frozenset(self.params.sports), markets=frozenset(self.params.markets))

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
        signalled at its price, in offer order (`bookmakers`, else the book's order), then the
        offer's outcome order."""
        p = self.params
        if p.pre_match_only and self.ctx.now() >= fixture.start_time:
            return []
        if p.min_minutes_to_start and self.ctx.now() > fixture.start_time - timedelta(minutes=p.min_minutes_to_start):
            return []
        consensus = self.ctx.book.consensus(fixture, market, p.devig)
        if consensus is None or not consensus.fair:
            return []
        # last_price(selection, offer) as last read or set here, per market: it changes only
        # by this strategy's signals, and building a selection's key costs more than the rest
        known: dict[tuple[str, str], float] = {}
        hits: list[_Hit] = []
        for offer, outcome, price, prob in self._candidates(fixture, market, consensus):
            edge = expected_value(price, prob)
            if edge < p.min_edge:
                continue
            if not known:  # looked up with the first quote at value
                known = self._last.setdefault((fixture, market), known)
            if known.get((outcome, offer), 0.0) == price:
                continue
            selection = Selection(fixture, market, outcome)
            last = known[(outcome, offer)] = self.ctx.last_price(selection, offer) or 0.0
            if last == price:  # remembered across restarts
                continue
            stake = self._stake(price, prob)
            if stake < p.min_stake or stake <= 0:
                continue
            hits.append((offer, outcome, price, prob, edge, stake, selection))
        if len(hits) > 1:
            hits.sort(key=self._order(fixture, market))
        out: list[Signal] = []
        for offer, outcome, price, prob, edge, stake, selection in hits:
            known[(outcome, offer)] = price
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

    def _candidates(
        self, fixture: FixtureKey, market: MarketKey, consensus: Consensus
    ) -> Iterator[tuple[str, str, float, float]]:
        """(offer, outcome, price, reference probability) of every usable quote at a book we may
        bet at whose price could reach `min_edge`: only the quotes priced at or above
        (1 + min_edge) / (the highest reference probability any offer can have) are looked at
        (`OddsBook.quotes_between`), so unchanged books far from value cost nothing."""
        p = self.params
        n = consensus.count
        exclude = p.consensus_exclude_offer
        members_offer = exclude and n - 1 >= p.min_consensus_books  # a book of the consensus may be offered
        sharp: tuple[float, ...] | None = None
        if p.sharp_books:
            refs = [consensus.fair[b] for b in p.sharp_books if b in consensus.fair]
            if not refs:
                return
            sharp = tuple(sum(r[i] for r in refs) / len(refs) for i in range(len(consensus.outcomes)))
            bound = sharp
        elif n < p.min_consensus_books:  # a book outside the consensus sees n books, one inside n - 1
            return
        elif members_offer:
            # the highest leave-one-out mean leaves out the lowest; it is >= the mean of all n
            bound = tuple((s - low) / (n - 1) for s, low in zip(consensus.sums, consensus.lowest, strict=True))
        else:  # every offer's reference is the mean of all n
            bound = tuple(s / n for s in consensus.sums)
        offers = frozenset(p.bookmakers)
        barred = frozenset(p.sharp_books)
        for i, outcome in enumerate(consensus.outcomes):
            if bound[i] <= 0:
                continue
            # the slack covers the rounding of `bound`; `expected_value` decides exactly
            low = max(p.min_price, (1 + p.min_edge) / bound[i] * (1 - 1e-9))
            for offer, price in self.ctx.book.quotes_between(fixture, market, outcome, low, p.max_price):
                if (offer not in offers) if offers else (offer in barred):
                    continue
                if sharp is not None:
                    prob: float | None = sharp[i]
                elif exclude and offer in consensus.fair:
                    prob = consensus.probability(i, offer) if members_offer else None
                else:
                    prob = consensus.probability(i)
                if prob is not None:
                    yield offer, outcome, price, prob

    def _order(self, fixture: FixtureKey, market: MarketKey) -> Callable[[_Hit], tuple[int, int]]:
        """Sort key of hits: the offer's place (`bookmakers`, else the book's), then the
        outcome's place in the offer's market (the order a scan of every offer would give)."""
        books = self.params.bookmakers or self.ctx.book.bookmakers(fixture, market)
        rank = {b: i for i, b in reversed(list(enumerate(books)))}  # first place of a duplicate
        outcomes: dict[str, dict[str, int]] = {}

        def key(hit: _Hit) -> tuple[int, int]:
            offer = hit[0]
            if offer not in outcomes:
                outcomes[offer] = {o: i for i, o in enumerate(self.ctx.book.market(fixture, market, offer))}
            return rank[offer], outcomes[offer][hit[1]]

        return key
