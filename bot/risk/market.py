"""Worst-case loss of a market over its outcomes, from the net book of backs and lays
(docs/architecture.md, "Risk > Market worst case").

The reference is flumine's `max_selection_exposure` control: per selection its blotter keeps the
worst profit if the selection wins and if it loses, matched bets netted, unmatched orders counted
only against the side they can hurt. Here that is extended to the market: exactly one outcome
wins, so the worst case is taken over the winners, not per selection.

Per unit of stake at decimal price p, the PnL of a position on outcome o when outcome w wins:

    back on o:  w = o: +(p - 1)     w != o: -1
    lay on o:   w = o: -(p - 1)     w != o: +1

An open bet counts as it stands. The unfilled part of an order (or an approval in flight) may fill
by any amount from nothing to all of it, so it counts only where it worsens the outcome
(pessimistically): an unfilled back loses its stake where o does not win and adds nothing where it
does; an unfilled lay loses its liability (p - 1) x stake where o wins (p its price limit, the most
it can be matched at) and adds nothing elsewhere. Each outcome's worst fill is independent of the
others', so taking the minimum below is the worst over every outcome and every fill.

Each position is stored as two numbers: `lose`, its PnL when its outcome does not win, and
`delta`, its PnL when it wins minus `lose`. With `base` = the sum of `lose` over the market,

    PnL(w) = base + delta[w]          (delta[w] = 0 for an outcome holding no position)
    worst-case loss = max(0, -min over the market's outcomes of PnL(w))

An outcome with no position is one of the winners unless the positions cover every outcome of a
market whose outcome set is known (`ONE_WINNER`); a void or push returns every stake (PnL 0,
never below the maximum with 0). Markets that may have several winners (Betfair's "place", or
a market type not listed) take the sum over their selections of each one's worst, the win or the
lose side (flumine's per-selection figure): a bound that holds whatever subset wins.

Money is exact Decimal; a price enters through str() so the products are exact. A figure costs
O(outcomes of the market).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.types import Side

ZERO = Decimal(0)

# Market types whose single winner is one of a fixed outcome set (the repo's grading, bot/sim/results.py:
# a moneyline tie is a push). Other one-winner types whose outcome set is open (Betfair's runners).
ONE_WINNER: dict[str, frozenset[str] | None] = {
    "moneyline": frozenset({"home", "away"}),
    "1x2": frozenset({"home", "draw", "away"}),
    "spread": frozenset({"home", "away"}),
    "total": frozenset({"over", "under"}),
    "win": None,
    "match_odds": None,
}


@dataclass(frozen=True, slots=True)
class Part:
    """One position's share of its market: `lose` its PnL when its outcome loses, `delta` its
    PnL when the outcome wins minus `lose` (stake currency)."""

    lose: Decimal
    delta: Decimal

    def __neg__(self) -> Part:
        return Part(-self.lose, -self.delta)


def bet_part(side: Side, stake: Decimal, price: float) -> Part:
    """A placed bet: back -> lose -stake, delta stake x price; lay -> lose +stake, delta -stake x price."""
    p = Decimal(str(price))
    if side is Side.BACK:
        return Part(-stake, stake * p)
    return Part(stake, -stake * p)


def pending_part(side: Side, stake: Decimal, price: float) -> Part:
    """The unfilled `stake` of an order, counted where it can only hurt: back -> lose -stake
    (and nothing if it wins); lay -> the liability (price - 1) x stake lost if it wins, at the
    order's price limit `price`."""
    if side is Side.BACK:
        return Part(-stake, stake)
    return Part(ZERO, -(Decimal(str(price)) - 1) * stake)


def split(selection: str) -> tuple[str, str, str]:
    """(market id, market type, outcome) of a `Selection.key`: the market id is the key without
    its outcome (fixture and market). A key that is not a selection's (an unknown bet, counted
    under its request uuid) is a market of its own with one outcome."""
    parts = selection.split("|")
    if len(parts) != 5:
        return selection, "", ""
    market_type = parts[3].partition("/")[0]
    return "|".join(parts[:4]), market_type, parts[4]


class MarketSums:
    """`base` and per-outcome `lose` / `delta` sums of one market, kept incrementally."""

    __slots__ = ("base", "count", "delta", "lose")

    def __init__(self) -> None:
        self.base = ZERO
        self.lose: dict[str, Decimal] = {}
        self.delta: dict[str, Decimal] = {}
        self.count: dict[str, int] = {}  # positions per outcome: an emptied outcome leaves the dicts

    def add(self, outcome: str, part: Part, sign: int) -> None:
        self.base += sign * part.lose
        n = self.count.get(outcome, 0) + sign
        if n <= 0:
            self.count.pop(outcome, None)
            self.lose.pop(outcome, None)
            self.delta.pop(outcome, None)
            return
        self.count[outcome] = n
        self.lose[outcome] = self.lose.get(outcome, ZERO) + sign * part.lose
        self.delta[outcome] = self.delta.get(outcome, ZERO) + sign * part.delta

    @property
    def empty(self) -> bool:
        return not self.count


def worst_case(sums: MarketSums | None, market_type: str, extra: tuple[str, Part] | None = None) -> Decimal:
    """Worst-case loss (>= 0, stake currency) of a market's positions, with `extra` (outcome,
    part) added as if held; see the module docstring for the formula."""
    lose = sums.lose if sums is not None else {}
    delta = sums.delta if sums is not None else {}
    base = sums.base if sums is not None else ZERO
    eo, ep = extra if extra is not None else ("", Part(ZERO, ZERO))
    outcomes = set(delta) | {eo} if extra is not None else set(delta)
    if market_type not in ONE_WINNER:  # several may win: each selection's worst side, summed
        total = ZERO
        for o in outcomes:
            o_lose = lose.get(o, ZERO) + (ep.lose if o == eo else ZERO)
            o_win = o_lose + delta.get(o, ZERO) + (ep.delta if o == eo else ZERO)
            total += max(ZERO, -min(o_lose, o_win))
        return total
    base += ep.lose
    worst = min((base + delta.get(o, ZERO) + (ep.delta if o == eo else ZERO) for o in outcomes), default=ZERO)
    known = ONE_WINNER[market_type]
    if known is None or not known <= outcomes:
        worst = min(worst, base)  # an outcome holding no position may win
    return max(ZERO, -worst)
