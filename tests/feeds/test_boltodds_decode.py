"""BoltOdds decoding on the real captured frames, the protocol's actions, and bad input."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.clock import ReplayClock
from bot.feeds.boltodds_decode import BoltOddsDecoder, BoltOddsStream
from bot.market.book import OddsBook
from bot.types import BookCleared, FeedStatus, FixtureKey, MarketKey, OddsBatch, OddsUpdate, Selection

from .conftest import BOLT_SAMPLES, VIKINGS_GAME, unbatched
from .fuzz import mutate, mutations

AT = datetime(2025, 9, 8, 10, 52, 40, tzinfo=UTC)
VIKINGS = FixtureKey("NFL", "Chicago Bears", "Minnesota Vikings", datetime(2025, 9, 9, 0, 15, tzinfo=UTC))


def updates(events: list) -> list[OddsUpdate]:
    return [e for e in unbatched(events) if isinstance(e, OddsUpdate)]


def test_vikings_moneyline_after_real_initial_state(bolt_samples: dict) -> None:
    frame = next(f for f in bolt_samples["initial_state"] if f["data"]["game"] == VIKINGS_GAME)
    events = BoltOddsDecoder().decode(orjson.dumps(frame), AT)
    assert len(events) == 1784
    book = OddsBook(ReplayClock(AT))
    for ev in events:
        book.apply(ev)
    away_ml = Selection(VIKINGS, MarketKey("moneyline"), "away")
    q = book.quote(away_ml, "draftkings")
    assert q is not None and q.american == -122 and round(q.price, 4) == 1.8197 and q.usable
    home_ml = book.quote(Selection(VIKINGS, MarketKey("moneyline"), "home"), "draftkings")
    assert home_ml is not None and home_ml.american == 102 and home_ml.price == pytest.approx(2.02)
    # Spreads are keyed by the HOME handicap: "Minnesota Vikings -1.5" and "Chicago Bears 1.5"
    # are the two sides of spread@1.5.
    spread = book.market(VIKINGS, MarketKey("spread", "game", Decimal("1.5")), "draftkings")
    assert {o: q.american for o, q in spread.items()} == {"away": -112, "home": -108}
    total = book.market(VIKINGS, MarketKey("total", "game", Decimal("43.5")), "draftkings")
    assert {o: q.american for o, q in total.items()} == {"over": -110, "under": -110}
    assert MarketKey("moneyline", "1h") in book.markets(VIKINGS)
    ev = updates(events)[0]
    assert ev.feed_time == datetime(2025, 9, 8, 10, 52, 34, 472825, tzinfo=UTC)
    assert ev.received_at == AT and ev.source == "boltodds"
    assert ev.feed_ids["universal_game_id"] == "80cfa8281e36"
    assert ev.feed_ids["boltodds_event_id"] == "32225523"
    assert ev.feed_ids["boltodds_game"] == VIKINGS_GAME


def test_real_null_odds_line_update_suspends(bolt_samples: dict) -> None:
    stream = BoltOddsStream()
    book = OddsBook(ReplayClock(AT))
    rennes = [f for f in bolt_samples["game_update"] if f["data"]["sportsbook"] == "bodog"]
    targu = bolt_samples["line_update"][0]
    for ev in stream.decode(orjson.dumps(rennes), AT):  # a JSON array frame
        book.apply(ev)
    fixture = FixtureKey(
        "Challenger Targu Mures", "Jack Loge", "Imanol Lopez Morillo", datetime(2025, 9, 8, 9, 20, tzinfo=UTC)
    )
    under = Selection(fixture, MarketKey("total sets", "game", Decimal("2.5")), "under")
    # The real line_update carries odds: null for a line the book never priced here before.
    [ev] = stream.decode(orjson.dumps(targu), AT)
    assert isinstance(ev, OddsUpdate) and ev.selection == under and ev.suspended and ev.price is None
    book.apply(ev)
    q = book.quote(under, "bodog")
    assert q is not None and q.suspended and not q.usable
    # A priced line then suspended with "" (the documented other form).
    priced = orjson.loads(orjson.dumps(targu))
    priced["data"]["outcomes"]["U 2.5 Total Sets"]["odds"] = "-200"
    assert book.apply(stream.decode(orjson.dumps(priced), AT)[0])
    assert book.quote(under, "bodog").usable  # type: ignore[union-attr]
    priced["data"]["outcomes"]["U 2.5 Total Sets"]["odds"] = ""
    assert book.apply(stream.decode(orjson.dumps(priced), AT)[0])
    assert book.quote(under, "bodog").suspended  # type: ignore[union-attr]


def test_mixed_line_types_and_set_markets(bolt_samples: dict) -> None:
    neobet = next(f for f in bolt_samples["game_update"] if f["data"]["sportsbook"] == "neobet")
    events = updates(BoltOddsDecoder().decode(orjson.dumps(neobet), AT))
    keys = {(u.selection.market, u.selection.outcome): u.american for u in events}
    # "0.5" (string) for the home player and -0.5 (number) for the away player: one market.
    assert keys[(MarketKey("spread", "game", Decimal("0.5")), "home")] == 100
    assert keys[(MarketKey("spread", "game", Decimal("0.5")), "away")] == -143
    assert keys[(MarketKey("moneyline", "s2"), "home")] == 136
    start = events[0].selection.fixture.start_time
    assert start == datetime(2025, 9, 8, 9, 30, tzinfo=UTC)  # 05:30 AM Eastern (EDT)


def _replace_frame(bolt_samples: dict, action: str, keep: int) -> bytes:
    frame = orjson.loads(orjson.dumps(bolt_samples["game_update"][0]))
    frame["action"] = action
    frame["data"]["outcomes"] = dict(list(frame["data"]["outcomes"].items())[:keep])
    return orjson.dumps(frame)


@pytest.mark.parametrize("action", ["game_update", "initial_state", "game_added"])
def test_replace_suspends_outcomes_that_vanished(bolt_samples: dict, action: str) -> None:
    stream = BoltOddsStream()
    first = updates(stream.decode(_replace_frame(bolt_samples, "game_update", 8), AT))
    assert len(first) == 8 and not any(u.suspended for u in first)
    second = updates(stream.decode(_replace_frame(bolt_samples, action, 5), AT))
    assert len(second) == 8
    gone = [u for u in second if u.suspended]
    assert {u.selection for u in gone} == {u.selection for u in first[5:]}
    # Same set again: nothing more to suspend.
    assert len(updates(stream.decode(_replace_frame(bolt_samples, action, 5), AT))) == 5


def test_clear_actions(bolt_samples: dict) -> None:
    stream = BoltOddsStream()
    stream.decode(_replace_frame(bolt_samples, "game_update", 8), AT)
    removed = orjson.loads(_replace_frame(bolt_samples, "game_removed", 0))
    [batch] = stream.decode(orjson.dumps(removed), AT)
    assert isinstance(batch, OddsBatch) and batch.updates == () and not batch.complete
    [cleared] = batch.cleared
    assert isinstance(cleared, BookCleared) and cleared.bookmaker == "bodog"
    assert cleared.fixture is not None and cleared.fixture.home == "Pierre Antoine Faut"
    # After the removal a smaller set suspends nothing (the old set was forgotten).
    assert len(updates(stream.decode(_replace_frame(bolt_samples, "game_update", 5), AT))) == 5
    book_clear = {"timestamp": "2025-07-23T19:58:43.086382+00:00", "action": "book_clear",
                  "data": {"sport": {}, "sportsbook": "ballybet", "game": {}, "home_team": {},
                           "away_team": {}, "info": {}, "outcomes": {}}}
    sport_clear = {"action": "sport_clear", "data": {"sport": "NFL", "sportsbook": {}}}
    events = stream.decode(orjson.dumps([book_clear, sport_clear, {"action": "ping"}]), AT)
    assert events == [
        OddsBatch("boltodds", AT, cleared=(BookCleared("boltodds", AT, bookmaker="ballybet"),
                                           BookCleared("boltodds", AT, sport="NFL"))),
        FeedStatus("boltodds", AT, connected=True, stale=False, detail="ping"),
    ]


def test_clear_then_set_in_one_frame_keeps_the_set(bolt_samples: dict) -> None:
    """Clears and replaces apply in wire order: a set that follows its book's clear in the same
    batched frame is remembered, so the next smaller set still suspends what it dropped."""
    stream = BoltOddsStream()
    stream.decode(_replace_frame(bolt_samples, "game_update", 8), AT)
    clear = {"action": "book_clear", "data": {"sportsbook": "bodog"}}
    full = orjson.loads(_replace_frame(bolt_samples, "game_update", 8))
    [batch] = stream.decode(orjson.dumps([clear, full]), AT)
    assert isinstance(batch, OddsBatch) and len(batch.cleared) == 1 and len(batch.updates) == 8
    events = unbatched([batch])
    assert [type(e).__name__ for e in events] == ["BookCleared"] + ["OddsUpdate"] * 8
    assert not any(u.suspended for u in updates(events))  # the clear left no old set to diff
    after = updates(stream.decode(_replace_frame(bolt_samples, "game_update", 5), AT))
    assert [u.selection for u in after if u.suspended] == [u.selection for u in updates(events)[5:]]


def test_control_frames_and_bad_input_are_counted_not_raised(bolt_samples: dict) -> None:
    decoder = BoltOddsDecoder(max_frame_bytes=100_000)
    good = bolt_samples["line_update"][2]
    bad_odds = orjson.loads(orjson.dumps(good))
    bad_odds["data"]["outcomes"]["Leo Raquillet S1 G2 Moneyline"]["odds"] = "abc"
    no_info = orjson.loads(orjson.dumps(good))
    del no_info["data"]["info"]
    frames: list[str | bytes] = [
        '{"action": "socket_connected"}',
        '{"action": "subscription_updated"}',
        "ping",
        '{"action": "error", "message": "bad key"}',
        '{"action": "mystery"}',
        "{not json",
        b"\xff\xfe",
        "[1, 2]",
        orjson.dumps(bad_odds),
        orjson.dumps(no_info),
        orjson.dumps(bolt_samples["initial_state"][0]),  # ~600 kB > the 100 kB limit
        orjson.dumps(good),
    ]
    events = [e for f in frames for e in decoder.decode(f, AT)]
    assert [type(e).__name__ for e in events] == ["FeedStatus", "OddsUpdate"]
    assert events[-1].american == 130  # type: ignore[union-attr]
    s = decoder.stats
    assert (s["server_error"], s["unknown_action"], s["malformed_json"]) == (1, 1, 2)
    assert (s["missing_field"], s["bad_outcome"], s["oversized"]) == (3, 1, 1)
    assert s["frames"] == len(frames) and s["pings"] == 1 and s.bad_total == 9


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_real_frames_never_raise(data: st.DataObject) -> None:
    samples = orjson.loads(BOLT_SAMPLES.read_bytes())
    frame: object = data.draw(st.sampled_from(samples["line_update"] + samples["game_update"]))
    for a, b, junk in data.draw(mutations()):
        frame = mutate(frame, (a, b), junk)
    raw = orjson.dumps(frame, option=orjson.OPT_NON_STR_KEYS)
    cut = data.draw(st.integers(0, len(raw)))
    stream = BoltOddsStream()
    for wire in (raw, raw[:cut], orjson.dumps([frame, frame], option=orjson.OPT_NON_STR_KEYS)):
        for ev in unbatched(stream.decode(wire, AT)):
            assert isinstance(ev, OddsUpdate | BookCleared | FeedStatus)
            if isinstance(ev, OddsUpdate):
                assert ev.suspended == (ev.price is None)
                assert ev.price is None or ev.price > 1.0
