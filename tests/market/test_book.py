"""OddsBook behaviour: upserts, suspension, best price, staleness (stale mark, age, liveness),
clearing and memory release, and a model-based check of apply/clear sequences."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.clock import ReplayClock
from bot.market.book import OddsBook
from bot.types import BookCleared, FeedStatus, FixtureKey, MarketKey, OddsUpdate, Selection

T0 = datetime(2025, 9, 8, 10, 0, tzinfo=UTC)
BEARS = FixtureKey("NFL", "Chicago Bears", "Minnesota Vikings", datetime(2025, 9, 9, 0, 15, tzinfo=UTC))
PACKERS = FixtureKey("NFL", "Green Bay Packers", "Washington Commanders", datetime(2025, 9, 12, tzinfo=UTC))
ML = MarketKey("moneyline")
SPREAD = MarketKey("spread", "game", Decimal("1.5"))


def sel(outcome: str = "away", fixture: FixtureKey = BEARS, market: MarketKey = ML) -> Selection:
    return Selection(fixture, market, outcome)


def upd(
    selection: Selection,
    bookmaker: str,
    price: float | None,
    at: datetime = T0,
    source: str = "boltodds",
) -> OddsUpdate:
    return OddsUpdate(
        source, bookmaker, selection, price, None, price is None, at, at, {}
    )


def make(clock: ReplayClock | None = None) -> tuple[OddsBook, ReplayClock]:
    clock = clock or ReplayClock(T0)
    return OddsBook(clock, stale_after=timedelta(minutes=15)), clock


def test_upsert_reports_price_changes_only() -> None:
    book, _ = make()
    assert book.apply(upd(sel(), "draftkings", 1.8197))
    assert not book.apply(upd(sel(), "draftkings", 1.8197, T0 + timedelta(seconds=5)))
    assert book.apply(upd(sel(), "draftkings", 1.85, T0 + timedelta(seconds=9)))
    q = book.quote(sel(), "draftkings")
    assert q is not None and q.price == 1.85 and q.usable
    assert q.updated_at == T0 + timedelta(seconds=9) and q.source == "boltodds"
    assert book.quote(sel(), "fanduel") is None and book.quote(sel("home"), "draftkings") is None


def test_equal_selection_objects_share_one_quote() -> None:
    book, _ = make()
    book.apply(upd(sel(), "draftkings", 1.8))
    twin = replace(sel())
    book.apply(upd(twin, "draftkings", 1.9))
    assert len(book) == 1
    assert book.quote(sel(), "draftkings").price == 1.9  # type: ignore[union-attr]


def test_suspension_and_best_price() -> None:
    book, _ = make()
    book.apply(upd(sel(), "draftkings", 1.82))
    book.apply(upd(sel(), "fanduel", 1.87))
    book.apply(upd(sel(), "betmgm", 1.95))
    assert book.best(sel()).bookmaker == "betmgm"  # type: ignore[union-attr]
    assert book.apply(upd(sel(), "betmgm", None))
    q = book.quote(sel(), "betmgm")
    assert q is not None and q.suspended and q.price is None and not q.usable
    assert book.best(sel()).bookmaker == "fanduel"  # type: ignore[union-attr]
    assert set(book.quotes(sel())) == {"draftkings", "fanduel", "betmgm"}


def test_stale_mark_holds_until_each_quote_is_resent() -> None:
    book, _clock = make()
    book.apply(upd(sel("away"), "draftkings", 1.82))
    book.apply(upd(sel("home"), "draftkings", 2.02))
    book.apply(upd(sel("away"), "fanduel", 1.80, source="oddsapi"))
    book.apply(FeedStatus("boltodds", T0, connected=False, stale=True))
    assert book.quote(sel("away"), "draftkings").stale  # type: ignore[union-attr]
    assert not book.quote(sel("away"), "fanduel").stale  # type: ignore[union-attr]  # other source
    assert book.best(sel("away")).bookmaker == "fanduel"  # type: ignore[union-attr]
    # Liveness alone does not lift the stale mark: only a re-sent price does.
    book.apply(FeedStatus("boltodds", T0, connected=True, stale=False))
    assert book.quote(sel("away"), "draftkings").stale  # type: ignore[union-attr]
    assert not book.apply(upd(sel("away"), "draftkings", 1.82, T0 + timedelta(seconds=1)))
    assert not book.quote(sel("away"), "draftkings").stale  # type: ignore[union-attr]
    assert book.quote(sel("home"), "draftkings").stale  # type: ignore[union-attr]


def test_age_staleness_and_liveness_confirmation() -> None:
    book, clock = make()
    book.apply(upd(sel(), "draftkings", 1.82))
    clock.advance(T0 + timedelta(minutes=15))
    assert not book.quote(sel(), "draftkings").stale  # type: ignore[union-attr]
    clock.advance(T0 + timedelta(minutes=16))
    assert book.quote(sel(), "draftkings").stale  # type: ignore[union-attr]
    assert book.best(sel()) is None
    # The connected feed vouches for its unchanged prices.
    book.apply(FeedStatus("boltodds", T0 + timedelta(minutes=16), connected=True, stale=False))
    assert book.quote(sel(), "draftkings").usable  # type: ignore[union-attr]
    # A disconnected status is no confirmation.
    clock.advance(T0 + timedelta(minutes=40))
    book.apply(FeedStatus("boltodds", T0 + timedelta(minutes=40), connected=False, stale=False))
    assert book.quote(sel(), "draftkings").stale  # type: ignore[union-attr]


def test_market_views_and_selection_lookup() -> None:
    book, _ = make()
    book.apply(upd(sel("away"), "draftkings", 1.82))
    book.apply(upd(sel("home"), "draftkings", 2.02))
    book.apply(upd(sel("home", market=SPREAD), "draftkings", 1.93))
    book.apply(upd(sel("home"), "fanduel", 2.05))
    assert {o: q.price for o, q in book.market(BEARS, ML, "draftkings").items()} == {
        "away": 1.82,
        "home": 2.02,
    }
    assert set(book.markets(BEARS)) == {ML, SPREAD}
    assert set(book.bookmakers(BEARS, ML)) == {"draftkings", "fanduel"}
    assert book.fixtures() == [BEARS]
    key = sel("home", market=SPREAD).key
    assert book.selection(key) == sel("home", market=SPREAD)
    assert book.selection("NFL|nobody") is None


def test_clear_by_fixture_bookmaker_sport_frees_memory() -> None:
    book, _ = make()
    for fixture in (BEARS, PACKERS):
        for bookmaker in ("draftkings", "fanduel"):
            book.apply(upd(sel("home", fixture), bookmaker, 2.0))
            book.apply(upd(sel("away", fixture), bookmaker, 1.9))
    book.apply(upd(sel("home", PACKERS), "pinnacle", 2.1, source="oddsapi"))
    key = sel("home").key
    assert book.selection(key) is not None
    assert book.apply(BookCleared("boltodds", T0, bookmaker="draftkings", fixture=BEARS))
    assert book.bookmakers(BEARS, ML) == ["fanduel"]
    assert book.apply(BookCleared("boltodds", T0, fixture=BEARS))
    assert BEARS not in book.fixtures() and book.selection(key) is None
    assert not book.apply(BookCleared("boltodds", T0, fixture=BEARS))
    assert book.apply(BookCleared("boltodds", T0, bookmaker="fanduel"))
    assert len(book) == 3
    assert book.apply(BookCleared("boltodds", T0, sport="NFL"))
    # Only the clearing source's quotes go.
    assert len(book) == 1 and book.bookmakers(PACKERS, ML) == ["pinnacle"]
    # Re-adding after a clear works (the id fast path was reset).
    assert book.apply(upd(sel("home"), "draftkings", 2.2))
    assert book.quote(sel("home"), "draftkings").price == 2.2  # type: ignore[union-attr]


OUTCOMES = [sel(o, f) for o in ("home", "away") for f in (BEARS, PACKERS)]
BOOKS = ["draftkings", "fanduel"]
op = st.one_of(
    st.tuples(st.just("upd"), st.sampled_from(OUTCOMES), st.sampled_from(BOOKS),
              st.one_of(st.none(), st.sampled_from([1.5, 2.0, 2.5]))),
    st.tuples(st.just("clear"), st.sampled_from([BEARS, PACKERS, None]),
              st.sampled_from(BOOKS + [None]), st.none()),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(op, max_size=40))
def test_book_matches_a_plain_model(ops: list[tuple]) -> None:
    book, _ = make()
    model: dict[tuple[Selection, str], float | None] = {}
    for kind, a, b, c in ops:
        if kind == "upd":
            s = replace(a)  # a fresh but equal object, as a feed may send
            changed = book.apply(upd(s, b, c))
            assert changed == ((a, b) not in model or model[(a, b)] != c)
            model[(a, b)] = c
        else:
            book.apply(BookCleared("boltodds", T0, bookmaker=b, fixture=a))
            model = {k: v for k, v in model.items()
                     if not ((a is None or k[0].fixture == a) and (b is None or k[1] == b))}
    assert len(book) == len(model)
    for (s, b), price in model.items():
        q = book.quote(s, b)
        assert q is not None and q.price == price and q.suspended == (price is None)
    assert set(book.fixtures()) == {s.fixture for s, _ in model}
