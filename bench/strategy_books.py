"""Value strategy cost per update at 3, 11 and 80 bookmakers per market: the incremental
evaluation on the book's derived state (bot/market/book.py `consensus`, `quotes_between`) vs the
original from-scratch one (every book de-vigged and every offer scanned on each update), and one
vs five copies of the strategy sharing one book.

Markets are real closing 1X2 prices re-priced to N books (tests/data/football_data; football-data.co.uk):
each match's fair probabilities are Pinnacle's closing prices de-vigged, each synthetic book
takes the margin of a real book's closing market (Bet365, Bwin, Interwetten, William Hill, VC Bet)
and a price noise of its own (a few soft books are noisier: they make the value). Updates are
single live pushes (one outcome of one book re-priced, `OddsBook.apply` then `on_odds`, as the
host does), 50 ms apart on the engine clock, so quotes also age out (15 min). The same update
sequence runs through each variant on its own book (the from-scratch one through its first
`--scratch-updates` only: it is slow); the best of `--rounds` interleaved rounds counts. The
strategies' share is the time minus the book's alone. Goal: <= 50 us per update at 80 books;
five copies cost at most five times one (x5/x1 <= 5).

    python bench/strategy_books.py [--updates 10000] [--scratch-updates 2000] [--markets 20]
                                   [--rounds 3] [--quick]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.clock import ReplayClock
from bot.market.book import OddsBook
from bot.market.odds import OddsError, expected_value, no_vig_probabilities
from bot.strategy.api import StrategyContext
from bot.strategy.builtin.value import ValueStrategy
from bot.types import FixtureKey, MarketKey, OddsUpdate, Selection, Signal

DATA = Path(__file__).resolve().parent.parent / "tests/data/football_data/top5_2023-24_closing_1x2.csv.gz"
REAL_BOOKS = ["B365C", "BWC", "IWC", "WHC", "VCC"]
OUTCOMES = {"home": "H", "draw": "D", "away": "A"}
MARKET = MarketKey("1x2")
T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
STEP = timedelta(milliseconds=50)


class FromScratch(ValueStrategy):
    """The original evaluation (bot/strategy/builtin/value.py before the derived state): every
    book's market de-vigged and the consensus summed on each update, every offer scanned."""

    def _fair(self, fixture: FixtureKey, market: MarketKey, books: list[str]) -> dict[str, dict[str, float]]:
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

    def _evaluate(self, fixture: FixtureKey, market: MarketKey) -> list[Signal]:
        p = self.params
        if p.pre_match_only and self.ctx.now() >= fixture.start_time:
            return []
        books = self.ctx.book.bookmakers(fixture, market)
        fair = self._fair(fixture, market, books)
        if not fair:
            return []
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
                if self.ctx.last_price(selection, offer) == price:
                    continue
                stake = self._stake(price, prob)
                if stake < p.min_stake or stake <= 0:
                    continue
                out.append(self.ctx.signal(selection, stake=stake, price=price, bookmakers=(offer,), edge=edge,
                                           expires_in=p.expiry_seconds))
        return out


class Markets:
    """`markets` real matches re-priced to `books` synthetic books, and a stream of updates."""

    def __init__(self, markets: int, books: int, seed: int) -> None:
        rng = random.Random(seed)
        with gzip.open(DATA, "rt", newline="") as f:
            rows = [r for r in csv.DictReader(f) if all(r[f"PSC{c}"] for c in "HDA")]
        rows = rows[:markets]
        margins = [sum(1 / float(r[b + c]) for c in "HDA") - 1 for r in rows for b in REAL_BOOKS
                   if all(r[b + c] for c in "HDA")]
        self.names = [f"book{i:02d}" for i in range(books)]
        self.margin = {b: rng.choice(margins) for b in self.names}
        self.noise = {b: 0.06 if i % 7 == 3 else 0.012 for i, b in enumerate(self.names)}  # a few soft books
        self.fixtures: list[tuple[FixtureKey, dict[str, float]]] = []
        for r in rows:
            fair = no_vig_probabilities([float(r[f"PSC{c}"]) for c in "HDA"])
            fixture = FixtureKey(r["Div"], r["HomeTeam"], r["AwayTeam"], T0 + timedelta(days=2))
            self.fixtures.append((fixture, dict(zip(OUTCOMES, fair, strict=True))))
        self.selections = {(f, o): Selection(f, MARKET, o) for f, _ in self.fixtures for o in OUTCOMES}
        self.rng = rng

    def price(self, fair: float, book: str) -> float:
        raw = 1 / (fair * (1 + self.margin[book])) * self.rng.lognormvariate(0, self.noise[book])
        return max(1.01, round(raw, 2))

    def board(self) -> list[tuple[Selection, str, float]]:
        return [(self.selections[(f, o)], b, self.price(p, b))
                for f, fair in self.fixtures for b in self.names for o, p in fair.items()]

    def stream(self, n: int) -> list[tuple[Selection, str, float]]:
        out = []
        for _ in range(n):
            fixture, fair = self.rng.choice(self.fixtures)
            outcome = self.rng.choice(list(OUTCOMES))
            book = self.rng.choice(self.names)
            out.append((self.selections[(fixture, outcome)], book, self.price(fair[outcome], book)))
        return out


def run(kind: type[ValueStrategy] | None, copies: int, board: list[tuple[Selection, str, float]],
        stream: list[tuple[Selection, str, float]]) -> tuple[float, int]:
    """Seconds for `stream` through a fresh book (loaded with `board`) and `copies` strategies
    (None: the book alone), and the signals they returned."""
    clock = ReplayClock(T0)
    book = OddsBook(clock)
    params = ValueStrategy.Params()
    strategies = [] if kind is None else [
        kind(StrategyContext(f"value{i}", params, book=book, clock=clock, ledger=None)) for i in range(copies)]
    hooks: list[Callable[..., Any]] = [s.on_odds for s in strategies]
    for sel, b, price in board:
        book.apply(OddsUpdate("bench", b, sel, price, None, False, T0, T0))
    for sel in {s for s, _, _ in board}:  # evaluated once before timing: caches built, board signalled
        for hook in hooks:
            hook(update=OddsUpdate("bench", "-", sel, None, None, True, T0, T0))
    updates = []
    at = T0
    for sel, b, price in stream:
        at += STEP
        updates.append(OddsUpdate("bench", b, sel, price, None, False, at, at))
    signals, apply, advance = 0, book.apply, clock.advance
    start = time.perf_counter()
    for update in updates:
        advance(update.received_at)
        if apply(update):
            for hook in hooks:
                signals += len(hook(update=update))
    return time.perf_counter() - start, signals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=10_000, help="updates timed per variant and round")
    parser.add_argument("--scratch-updates", type=int, default=2_000, help="of them, for the from-scratch one")
    parser.add_argument("--markets", type=int, default=20, help="1X2 markets (real matches)")
    parser.add_argument("--books", default="3,11,80", help="bookmakers per market, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="1,000 updates (300 from scratch), 1 round")
    args = parser.parse_args()
    if args.quick:
        args.updates, args.scratch_updates, args.rounds = 1_000, 300, 1
    variants: dict[str, tuple[type[ValueStrategy] | None, int]] = {
        "book only": (None, 0), "value x1": (ValueStrategy, 1), "value x5": (ValueStrategy, 5),
        "scratch x1": (FromScratch, 1),
    }
    scratch = min(args.scratch_updates, args.updates)
    print(f"{args.markets} 1X2 markets, {args.updates:,} single updates per run ({scratch:,} from scratch), "
          f"best of {args.rounds} rounds; us per update (apply + strategies)")
    print(f"{'books':>5} {'book only':>10} {'value x1':>10} {'value x5':>10} {'scratch x1':>11} "
          f"{'scratch/value':>14} {'x5/x1 strategy':>15} {'signals x1':>11}")
    for books in (int(n) for n in args.books.split(",")):
        markets = Markets(args.markets, books, args.seed)
        board, stream = markets.board(), markets.stream(args.updates)
        best = dict.fromkeys(variants, float("inf"))
        signals: dict[str, int] = {}
        for _ in range(args.rounds):
            for name, (kind, copies) in variants.items():
                part = stream[:scratch] if kind is FromScratch else stream
                seconds, signals[name] = run(kind, copies, board, part)
                best[name] = min(best[name], seconds / len(part))
        us = {name: best[name] * 1e6 for name in variants}
        own = {name: us[name] - us["book only"] for name in variants}  # the strategies' share
        print(f"{books:>5} {us['book only']:>10.2f} {us['value x1']:>10.2f} {us['value x5']:>10.2f} "
              f"{us['scratch x1']:>11.2f} {us['scratch x1'] / us['value x1']:>14.1f} "
              f"{own['value x5'] / own['value x1']:>15.2f} {signals['value x1']:>11}")
    print("goal: value x1 <= 50 us at 80 books; x5/x1 strategy <= 5 (the derived state is shared)")


if __name__ == "__main__":
    main()
