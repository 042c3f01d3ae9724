"""`bot report`: what the ledger says happened.

Signals, risk decisions by reason code (a user check's own code too), orders by status, fills,
open exposure, settled PnL (exchange commission included, and its total) and ROI (PnL / settled
stake) by strategy, bookmaker and sport, and back and lay apart (`by_side`: bets, turnover,
liability, settled PnL, commission). Money
is summed as Decimal and printed as strings in the JSON form, in the bot's one currency
(`currency`: that of its orders, settlements and bets; bets at a book in another currency were
converted when stored, docs/reference/abp.md §11; rows kept before conversion existed keep their
own currency and show up as a second one, e.g. "EUR+USD"). Exposure is the risk manager's
figure (bot/risk/positions.py: a lay counts its liability; open orders are `Ledger.open_orders`),
read from the ledger opened read-only.

Three checks that can fail (docs/architecture.md, "Invariants > Nothing lost, nothing silent"):
- `unresolved`: open bets whose fixture has kicked off, by fixture and reason (`unresolved_bets`,
  the one definition, also what the paper settler reports and logs at the end of a replay);
- `repeated_orders`: the same strategy, selection, bookmaker and side ordered again at the same
  price as its previous order inside the dedupe window (`repeated_orders`): what risk's
  DUPLICATE_SIGNAL exists to prevent, across restarts too;
- `fill_mismatches`: bets that disagree with their order: more stake placed than ordered, or a
  back order filled below its `orderPrice` floor (`fill_mismatches`, docs/reference/abp.md §8.1).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from loguru import logger
from rich.console import Console
from rich.table import Table

from bot.ledger.models import BetRow, OrderRow, SettlementRow
from bot.ledger.store import Ledger
from bot.risk.positions import PositionBook, worst_case_loss
from bot.types import BetStatus, FixtureKey, Selection, Side

log = logger.bind(stage="settlement")

GAME_OVER_AFTER = timedelta(hours=4)
"""A game counts as over (and its bets gradable) this long after its results' kickoff."""
DEDUPE_WINDOW_SECONDS = 3600.0
"""Default window of the repeated-orders check, in seconds (`risk.duplicate_window_seconds`)."""
SHOWN = 5  # examples listed per failed check
CENT = Decimal("0.01")

# Why an open bet past kickoff has not settled (`Unresolved.reason`).
NO_RESULTS_SOURCE = "no results source"
NOT_IN_RESULTS = "fixture not found in results"
RESULT_PENDING = "result pending"  # in the results, game not over yet (GAME_OVER_AFTER)
UNGRADABLE = "market not gradable from the score"
NOT_CONFIRMED = "bet not confirmed"  # only CONFIRMED bets settle (docs/reference/abp.md §9)
NOT_SETTLED = "result known, not settled yet"  # the next settlement run settles it, or failed
ORDER_MISSING = "order missing from the ledger"
VENUE_PENDING = "awaiting venue settlement"  # live: ABP settles (docs/reference/abp.md §9)
UNREADABLE = "selection key unreadable"
CANNOT_SETTLE = frozenset({NO_RESULTS_SOURCE, NOT_IN_RESULTS, UNGRADABLE})
"""Reasons no later settlement run can change: `settlement.unresolved: void_after_hours` voids these."""
_NOT_PLACED = frozenset({BetStatus.REJECTED.value, BetStatus.FAILED.value, BetStatus.CANCELLED.value})


class KnownResult(Protocol):
    """A fixture's result as `ResultLookup.find` returns it (bot/sim/results.py FixtureResult)."""

    @property
    def start_time(self) -> datetime: ...


class ResultLookup(Protocol):
    """The loaded results files (bot/sim/results.py `Results`), without importing the simulators."""

    def find(self, fixture: FixtureKey) -> KnownResult | None: ...

    def gradable(self, selection: Selection) -> bool: ...


@dataclass(frozen=True, slots=True)
class Unresolved:
    """Open bets of one fixture that have not settled, for one reason.

    `fixture` is `str(FixtureKey)` ("NFL|Home vs Away|2025-11-16T18:00Z"); `kickoff` its UTC
    kickoff (None when the bet's order is missing or unreadable); `reason` one of the reason
    constants above; `bets` how many; `exposure` their worst-case loss in stake currency (back:
    stake; lay: liability, bot/risk/positions.py `worst_case_loss`)."""

    fixture: str
    kickoff: datetime | None
    reason: str
    bets: int
    exposure: Decimal

    def to_json(self) -> dict[str, Any]:
        return {"fixture": self.fixture, "kickoff": None if self.kickoff is None else self.kickoff.isoformat(),
                "reason": self.reason, "bets": self.bets, "exposure": _money(self.exposure)}


def bet_reason(
    selection: Selection, bet_status: str, now: datetime, results: ResultLookup | None, *, venue_settles: bool = False
) -> str | None:
    """Why an open bet on `selection` has not settled at `now`; None before its kickoff.

    `results` None means no results source is configured; `venue_settles` that the venue (ABP,
    live mode) settles bets, not results files."""
    if now < selection.fixture.start_time:
        return None
    if venue_settles:
        return VENUE_PENDING
    if results is None:
        return NO_RESULTS_SOURCE
    result = results.find(selection.fixture)
    if result is None:
        return NOT_IN_RESULTS
    if now < result.start_time + GAME_OVER_AFTER:
        return RESULT_PENDING
    if not results.gradable(selection):
        return UNGRADABLE
    if bet_status != BetStatus.CONFIRMED.value:
        return NOT_CONFIRMED
    return NOT_SETTLED


def unresolved_bets(
    ledger: Ledger, now: datetime, results: ResultLookup | None, *, venue_settles: bool = False
) -> list[Unresolved]:
    """Open bets (`Ledger.open_bets`) whose fixture kicked off before `now`, grouped by fixture
    and reason, sorted by kickoff; `results` None means no results source, `venue_settles` a live
    ledger (see `bet_reason`)."""
    bets = ledger.open_bets()
    orders = ledger.orders_by_uuid({b.request_uuid for b in bets})
    groups: dict[tuple[str, datetime | None, str], list[Decimal]] = defaultdict(list)
    for bet in bets:
        order = orders.get(bet.request_uuid)
        if order is None:
            groups[(f"order {bet.request_uuid}", None, ORDER_MISSING)].append(bet.placed_stake)
            continue
        try:
            selection = Selection.parse(order.selection)
        except ValueError:  # one unreadable row stops no other
            groups[(order.fixture or order.selection, None, UNREADABLE)].append(bet.placed_stake)
            continue
        reason = bet_reason(selection, bet.bet_status, now, results, venue_settles=venue_settles)
        if reason is not None:
            side = Side.BACK if order.back else Side.LAY
            loss = worst_case_loss(side, bet.placed_stake, bet.placed_price)
            groups[(str(selection.fixture), selection.fixture.start_time, reason)].append(loss)
    items = [Unresolved(fixture, kickoff, reason, len(losses), sum(losses, Decimal(0)))
             for (fixture, kickoff, reason), losses in groups.items()]
    return sorted(items, key=lambda u: (u.kickoff or datetime.min.replace(tzinfo=UTC), u.fixture, u.reason))


def log_unresolved(items: Sequence[Unresolved]) -> None:
    """Log one warning per fixture and reason of `items` and a total line (an info line when
    nothing is unresolved); called at the end of a run (docs/architecture.md, "Invariants >
    Nothing lost, nothing silent")."""
    for u in items:
        log.warning("unsettled: {} kickoff {}: {} bet(s), exposure {}: {}", u.fixture,
                    "?" if u.kickoff is None else f"{u.kickoff:%Y-%m-%d %H:%MZ}", u.bets, _money(u.exposure), u.reason)
    bets = sum(u.bets for u in items)
    if bets:
        log.warning("{} open bet(s) on {} fixture(s) past kickoff have not settled, exposure {}", bets,
                    len({u.fixture for u in items}), _money(sum((u.exposure for u in items), Decimal(0))))
    else:
        log.info("every bet past kickoff has settled")


def repeated_orders(orders: Iterable[OrderRow], window_seconds: float = DEDUPE_WINDOW_SECONDS) -> list[dict[str, Any]]:
    """Orders that repeat the previous order of the same strategy, selection, bookmaker and side
    at the same price (`order_price`) less than `window_seconds` after it, oldest first (a new
    price is a new decision; the same one again is a re-bet). Every order row counts (each is an order
    the bot committed to place, docs/architecture.md "Invariants > Exactly-once placement");
    an order to several bookmakers counts for each, one to any bookmaker ("") as bookmaker "*"."""
    last: dict[tuple[str, str, str, str], OrderRow] = {}
    found: list[dict[str, Any]] = []
    for order in sorted(orders, key=lambda o: (o.created_at or datetime.min.replace(tzinfo=UTC), o.id or 0)):
        side = (Side.BACK if order.back else Side.LAY).value
        repeat: dict[str, Any] | None = None
        for book in order.bookmakers.split(",") if order.bookmakers else ["*"]:
            key = (order.strategy, order.selection, book, side)
            previous = last.get(key)
            last[key] = order
            if (repeat is None and previous is not None and previous.order_price == order.order_price
                    and previous.created_at and order.created_at):
                apart = (order.created_at - previous.created_at).total_seconds()
                if apart < window_seconds:
                    repeat = {"strategy": order.strategy, "selection": order.selection, "bookmaker": book,
                              "side": side, "price": order.order_price, "request_uuid": order.request_uuid,
                              "previous_request_uuid": previous.request_uuid, "seconds_apart": apart}
        if repeat is not None:
            found.append(repeat)
    return found


def _price(value: float) -> Decimal:
    return Decimal(str(value))  # the decimal the float was written as: exact comparisons


def fill_mismatches(orders: Iterable[OrderRow], bets: Iterable[BetRow]) -> list[dict[str, Any]]:
    """Bets that disagree with their order (docs/reference/abp.md §8.1, §8.2, §11), one entry per
    problem: a bet with no order; `filled_stake` above the order stake; the placed stakes of its
    bets in the order currency summing above the order stake; for a back order, the first bet
    below `orderPrice` (the floor) or the stake-weighted price of its bets below it (later bets
    may be below the floor only while the average stays at or above it). Bets that were never
    placed (REJECTED, FAILED, CANCELLED) do not count; lay orders' price rule is not documented
    upstream and is not checked."""
    by_uuid = {o.request_uuid: o for o in orders}
    placed: dict[str, list[BetRow]] = defaultdict(list)
    found: list[dict[str, Any]] = []

    def problem(order: OrderRow | None, uuid: str, what: str, detail: str) -> None:
        found.append({"request_uuid": uuid, "strategy": order.strategy if order else "-",
                      "selection": order.selection if order else "-", "problem": what, "detail": detail})

    for bet in bets:
        if bet.request_uuid not in by_uuid:
            problem(None, bet.request_uuid, "no order", f"bet {bet.bet_id} has no order in the ledger")
        elif bet.bet_status not in _NOT_PLACED:
            placed[bet.request_uuid].append(bet)
    for uuid, order in by_uuid.items():
        if order.filled_stake > order.stake:
            problem(order, uuid, "stake", f"filled_stake {order.filled_stake} above order stake {order.stake}")
        rows = sorted(placed.get(uuid, []), key=lambda b: (b.placed_at or datetime.min.replace(tzinfo=UTC), b.bet_id))
        same_currency = [b for b in rows if b.placed_currency == order.currency]
        staked = sum((b.placed_stake for b in same_currency), Decimal(0))
        # a stake converted from the account currency may be off by the venue's rounding to cents
        slack = CENT if any(b.venue_currency not in (None, b.placed_currency) for b in same_currency) else 0
        if staked > order.stake + slack:
            problem(order, uuid, "stake", f"bets placed {staked} {order.currency} above order stake {order.stake}")
        if not order.back or not rows:
            continue
        floor = _price(order.order_price)
        if _price(rows[0].placed_price) < floor:
            problem(order, uuid, "price", f"first bet {rows[0].bet_id} at {rows[0].placed_price} below min price "
                                          f"{order.order_price}")
        weighted = sum((b.placed_stake * _price(b.placed_price) for b in same_currency), Decimal(0))
        if staked and weighted < floor * staked:
            problem(order, uuid, "price", f"stake-weighted price {weighted / staked:.4f} below min price "
                                          f"{order.order_price}")
    return found


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01")))


def _pnl_group(rows: list[SettlementRow], attr: str) -> dict[str, dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"bets": 0, "staked": Decimal(0), "pnl": Decimal(0), "won": 0, "lost": 0}
    )
    for row in rows:
        g = groups[getattr(row, attr) or "-"]
        g["bets"] += 1
        g["staked"] += row.stake
        g["pnl"] += row.pnl
        g["won"] += row.status in ("WON", "HALF_WON")
        g["lost"] += row.status in ("LOST", "HALF_LOST")
    return {
        k: {**v, "staked": _money(v["staked"]), "pnl": _money(v["pnl"]),
            "roi": f"{(v['pnl'] / v['staked'] * 100):.2f}%" if v["staked"] else "-"}
        for k, v in sorted(groups.items())
    }


def _by_side(orders: list[OrderRow], bets: list[BetRow], settlements: list[SettlementRow]) -> dict[str, dict[str, Any]]:
    """Back and lay apart, by their order's `back`: bets placed (not REJECTED, FAILED or
    CANCELLED), turnover (their placed stake: a lay's is the backer's stake), liability (what they
    put at risk: a back's stake, a lay's (price - 1) x stake), and the settled bets' count, PnL
    and the exchange commission in it. Bets without an order are left out (a failed check)."""
    back_of = {o.request_uuid: o.back for o in orders}
    sides: dict[str, dict[str, Any]] = {
        side.value: {"bets": 0, "turnover": Decimal(0), "liability": Decimal(0), "settled": 0, "pnl": Decimal(0),
                     "commission": Decimal(0)} for side in Side}
    for bet in bets:
        back = back_of.get(bet.request_uuid)
        if back is None or bet.bet_status in _NOT_PLACED:
            continue
        g = sides[(Side.BACK if back else Side.LAY).value]
        g["bets"] += 1
        g["turnover"] += bet.placed_stake
        g["liability"] += worst_case_loss(Side.BACK if back else Side.LAY, bet.placed_stake, bet.placed_price)
    for row in settlements:
        back = back_of.get(row.request_uuid)
        if back is None:
            continue
        g = sides[(Side.BACK if back else Side.LAY).value]
        g["settled"] += 1
        g["pnl"] += row.pnl
        g["commission"] += row.commission
    return {side: {k: _money(v) if isinstance(v, Decimal) else v for k, v in g.items()} for side, g in sides.items()}


def _clv(bets: list[BetRow]) -> dict[str, Any]:
    """Closing line value of the ledger's bets (bot/market/closing.py; `bot backtest` reports
    it with intervals, docs/research.md): mean CLV and the share beating the close over the bets
    with a close; bets not measured (before kickoff, or stored before closing lines) and those
    without a close counted apart."""
    closed = [b.clv for b in bets if b.clv is not None]
    return {
        "with_close": len(closed),
        "not_measured": sum(1 for b in bets if b.closed_at is None),
        "without_close": sum(1 for b in bets if b.closed_at is not None and b.clv is None),
        "mean": sum(closed) / len(closed) if closed else None,
        "beat_close": sum(1 for c in closed if c > 0) / len(closed) if closed else None,
    }


def build_report(
    db_path: Path | str,
    *,
    results: ResultLookup | None = None,
    now: datetime | None = None,
    dedupe_window_seconds: float = DEDUPE_WINDOW_SECONDS,
    venue_settles: bool = False,
) -> dict[str, Any]:
    """Read the ledger at `db_path` (a file, or a database URL; read only).

    Args:
        results: the configured results files (bot/sim/settlement.py `configured_results`);
            None means no results source, and every open bet past kickoff is named so.
        now: the time "past kickoff" is judged at (default: wall clock, UTC).
        dedupe_window_seconds: the repeated-orders window (`risk.duplicate_window_seconds`).
        venue_settles: the ledger is a live one, settled by ABP: open bets past kickoff are
            "awaiting venue settlement" (`results` is not used).

    Raises:
        FileNotFoundError: no ledger at `db_path`.
    """
    if isinstance(db_path, Path) and not db_path.is_file():
        raise FileNotFoundError(f"no ledger at {db_path}: run `bot run` first")
    ledger = Ledger(db_path, read_only=True)
    try:
        signals = ledger.signal_counts()
        decisions = ledger.decision_counts()
        orders = ledger.orders()
        bets = ledger.bets()
        settlements = ledger.settlements()
        positions = PositionBook.from_ledger(ledger).summary()
        unresolved = unresolved_bets(ledger, now or datetime.now(UTC), results, venue_settles=venue_settles)
    finally:
        ledger.close()
    repeats = repeated_orders(orders, dedupe_window_seconds)
    mismatches = fill_mismatches(orders, bets)

    currencies = {o.currency for o in orders} | {r.currency for r in settlements} | {b.placed_currency for b in bets}
    by_status = Counter(o.status for o in orders)
    settled_stake = sum((r.stake for r in settlements), Decimal(0))
    settled_pnl = sum((r.pnl for r in settlements), Decimal(0))
    return {
        "ledger": ledger.name,
        "currency": "+".join(sorted(currencies)) or "USD",
        "signals": {"total": sum(signals.values()), "by_strategy": signals},
        "decisions": {
            "total": sum(n for *_, n in decisions),
            "by_reason": {f"{v}:{r}" if r else v: n for v, r, n in sorted(decisions, key=lambda d: (d[0], d[1] or ""))},
        },
        "orders": {
            "total": len(orders),
            "open": positions.open_orders,
            "by_status": dict(sorted(by_status.items())),
            "staked": _money(sum((o.filled_stake for o in orders), Decimal(0))),
        },
        "fills": {
            "bets": len(bets),
            "placed_stake": _money(sum((b.placed_stake for b in bets), Decimal(0))),
            "open_bets": positions.open_bets,
        },
        "exposure": positions.to_json(),
        "settled": {
            "bets": len(settlements),
            "staked": _money(settled_stake),
            "pnl": _money(settled_pnl),
            "commission": _money(sum((r.commission for r in settlements), Decimal(0))),
            "roi": f"{(settled_pnl / settled_stake * 100):.2f}%" if settled_stake else "-",
            "by_strategy": _pnl_group(settlements, "strategy"),
            "by_bookmaker": _pnl_group(settlements, "bookmaker"),
            "by_sport": _pnl_group(settlements, "sport"),
        },
        "by_side": _by_side(orders, bets, settlements),
        "clv": _clv(bets),
        "unresolved": {
            "bets": sum(u.bets for u in unresolved),
            "fixtures": len({u.fixture for u in unresolved}),
            "exposure": _money(sum((u.exposure for u in unresolved), Decimal(0))),
            "by_fixture": [u.to_json() for u in unresolved],
        },
        "checks": {
            "repeated_orders": {"window_seconds": dedupe_window_seconds, "count": len(repeats),
                                "first": repeats[:SHOWN]},
            "fill_mismatches": {"count": len(mismatches), "first": mismatches[:SHOWN]},
        },
    }


def render_report(report: dict[str, Any], console: Console) -> None:
    """Print the report as rich tables."""
    console.print(f"[bold]Ledger[/bold] {report['ledger']} (amounts in {report['currency']})")
    summary = Table(title="Summary", show_header=False)
    summary.add_row("signals", str(report["signals"]["total"]))
    summary.add_row("decisions", str(report["decisions"]["total"]))
    summary.add_row("orders", str(report["orders"]["total"]))
    checks, unresolved = report["checks"], report["unresolved"]
    repeats, mismatches = checks["repeated_orders"], checks["fill_mismatches"]
    summary.add_row(f"repeated orders (within {repeats['window_seconds']:g} s)", str(repeats["count"]))
    summary.add_row("fills disagreeing with their order", str(mismatches["count"]))
    summary.add_row("unresolved bets (past kickoff, open)",
                    f"{unresolved['bets']} on {unresolved['fixtures']} fixtures, exposure {unresolved['exposure']}")
    summary.add_row("fills (bets)", f"{report['fills']['bets']} staked {report['fills']['placed_stake']}")
    summary.add_row("open exposure", report["exposure"]["total"])
    s = report["settled"]
    summary.add_row("settled", f"{s['bets']} bets, staked {s['staked']}, PnL {s['pnl']} (commission "
                               f"{s['commission']}), ROI {s['roi']}")
    clv = report["clv"]
    summary.add_row("closing line value", "-" if clv["mean"] is None else
                    f"mean {clv['mean']:+.2%} over {clv['with_close']} bets, {clv['beat_close']:.0%} beat the close "
                    f"({clv['not_measured']} not measured: before kickoff or older bets; "
                    f"{clv['without_close']} without a close)")
    console.print(summary)
    for title, rows in (("Decisions by reason", report["decisions"]["by_reason"]),
                        ("Orders by status", report["orders"]["by_status"])):
        table = Table(title=title)
        table.add_column("key")
        table.add_column("count", justify="right")
        for key, n in rows.items():
            table.add_row(key, str(n))
        console.print(table)
    sides = Table(title="Back and lay")
    for col in ("side", "bets", "turnover", "liability", "settled", "pnl", "commission"):
        sides.add_column(col, justify="left" if col == "side" else "right")
    for side, g in report["by_side"].items():
        sides.add_row(side, str(g["bets"]), g["turnover"], g["liability"], str(g["settled"]), g["pnl"],
                      g["commission"])
    console.print(sides)
    exposure = Table(title="Open exposure by strategy")
    exposure.add_column("strategy")
    exposure.add_column("exposure", justify="right")
    for name, amount in report["exposure"]["by_strategy"].items():
        exposure.add_row(name, amount)
    console.print(exposure)
    for group in ("by_strategy", "by_bookmaker", "by_sport"):
        table = Table(title=f"Settled PnL {group.replace('_', ' ')}")
        for col in ("name", "bets", "won", "lost", "staked", "pnl", "roi"):
            table.add_column(col, justify="left" if col == "name" else "right")
        for name, g in s[group].items():
            table.add_row(name, str(g["bets"]), str(g["won"]), str(g["lost"]), g["staked"], g["pnl"], g["roi"])
        console.print(table)
    _render_checks(report, console)


def _render_checks(report: dict[str, Any], console: Console) -> None:
    """The unresolved bets and the failed checks' first examples, as tables (only when any)."""
    unresolved = report["unresolved"]["by_fixture"]
    if unresolved:
        table = Table(title="Unresolved bets (open past kickoff)")
        for col in ("fixture (sport|teams|kickoff)", "reason", "bets", "exposure"):
            table.add_column(col, justify="right" if col in ("bets", "exposure") else "left")
        for u in unresolved:
            table.add_row(u["fixture"], u["reason"], str(u["bets"]), u["exposure"])
        console.print(table)
    repeats = report["checks"]["repeated_orders"]
    if repeats["count"]:
        table = Table(title=f"Repeated orders: {repeats['count']}, first {len(repeats['first'])}")
        for col in ("strategy", "selection", "bookmaker", "side", "request_uuid", "repeats", "seconds"):
            table.add_column(col)
        for r in repeats["first"]:
            table.add_row(r["strategy"], r["selection"], r["bookmaker"], r["side"], r["request_uuid"],
                          r["previous_request_uuid"], f"{r['seconds_apart']:g}")
        console.print(table)
    mismatches = report["checks"]["fill_mismatches"]
    if mismatches["count"]:
        table = Table(title=f"Fills disagreeing with their order: {mismatches['count']}, "
                            f"first {len(mismatches['first'])}")
        for col in ("request_uuid", "strategy", "problem", "detail"):
            table.add_column(col)
        for m in mismatches["first"]:
            table.add_row(m["request_uuid"], m["strategy"], m["problem"], m["detail"])
        console.print(table)
