"""Poison numbers in real feed frames (docs/architecture.md, "Invariants > Nothing lost, nothing
silent"): a price or line no book can mean (1e30, 1e307, inf, nan, 0, -0, integers beyond any
float, JSON `NaN` / `Infinity` / 1e400 literals) drops the one update carrying it, counted and
logged once; everything else in the frame gets through unchanged. Plausible extremes (100.0, a
real -200000) get through. The bounds are bot.market.odds's and bot.feeds.normalise's; the
oracle below restates them independently of the decoders' code.
"""

from __future__ import annotations

import copy
import json
import math
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.bus.odds_in import OddsPayloadError, decode_item
from bot.feeds.boltodds_decode import BoltOddsStream
from bot.feeds.normalise import LINE_MAX, LineError, to_line
from bot.feeds.oddsapi_decode import OddsApiDiffer, parse_price
from bot.market.odds import AMERICAN_MAX, PRICE_MAX, PRICE_MIN, OddsError, american_to_decimal, feed_american
from bot.types import OddsBatch, OddsUpdate

from .conftest import unbatched
from .test_oddsapi_replay import FIRST3, snapshots

AT = datetime(2025, 9, 8, 10, 52, 40, tzinfo=UTC)
T0 = datetime(2025, 11, 16, 12, 40, tzinfo=UTC)
T1 = datetime(2025, 11, 16, 13, 13, tzinfo=UTC)
POISON_TOKEN = "__poison__"


class Literal:
    """A JSON number spelled as raw text (what orjson refuses: NaN, Infinity, 1e400, 10**400)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Literal({self.text})"


# Extreme values for any numeric field: as JSON numbers, as strings, and as raw JSON literals.
EXTREMES: list[object] = [
    1e30, -1e30, 1e307, -1e307, 0, -0, 0.0, -0.0, 10**30, -(10**30), 2**64, -(2**63) - 1,
    100.0, 100, -100, 99, -99.5, 1_000_000, -1_000_000, 1_000_001, -200_000, 150.5, 1e-300,
    "1e30", "-1e30", "1e307", "inf", "-inf", "Infinity", "nan", "NaN", "0", "-0", "100.0", "+100",
    "1e400", "+1000001", "abc", "",
    float("inf"), float("-inf"), float("nan"),
    Literal("NaN"), Literal("Infinity"), Literal("-Infinity"), Literal("1e400"), Literal("-1e400"),
    Literal("1" + "0" * 400),
]


def as_number(value: object) -> float | None:
    """What a JSON value means as a number to a reader that takes numeric strings (BoltOdds);
    None when it means none."""
    if isinstance(value, Literal):
        text = value.text
        return float(text) if not text.isdigit() else math.inf  # an integer beyond any float
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return float(value) if abs(value) < 10**300 else math.inf
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def plausible_american(value: object, *, strings: bool) -> bool:
    if isinstance(value, str) and not strings:
        return False
    number = as_number(value)
    return number is not None and math.isfinite(number) and 100 <= abs(number) <= AMERICAN_MAX


def plausible_decimal(value: object) -> bool:
    if isinstance(value, str):
        return False
    number = as_number(value)
    return number is not None and math.isfinite(number) and PRICE_MIN <= number <= PRICE_MAX


def plausible_line(value: object) -> bool:
    if value is None:
        return True
    number = as_number(value)
    if number is None or not math.isfinite(number):
        return False
    if isinstance(value, str) and value.strip().lower() in ("nan", "inf", "-inf", "infinity"):
        return False
    return abs(number) <= LINE_MAX


def needs_literal(value: object) -> bool:
    """Whether orjson cannot write `value` (it is then spelled as raw JSON text)."""
    if isinstance(value, Literal) or (isinstance(value, float) and not math.isfinite(value)):
        return True
    return isinstance(value, int) and not -(2**63) <= value < 2**64


def put(value: object) -> object:
    """What to put in the tree: `value`, or a token `wire` replaces by its raw JSON text."""
    return POISON_TOKEN if needs_literal(value) else value


def wire(obj: object, value: object) -> bytes:
    """`obj` as JSON, the token replaced by `value` spelled as JSON (`NaN`, `1e400`, 10**30 ...)."""
    text = orjson.dumps(obj).decode()
    if needs_literal(value):
        if isinstance(value, Literal):
            literal = value.text
        elif isinstance(value, float):
            literal = "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
        else:
            literal = str(value)
        text = text.replace(f'"{POISON_TOKEN}"', literal)
    return text.encode()


def key_of(u: OddsUpdate) -> tuple:
    return (u.bookmaker, u.selection, u.price, u.american, u.suspended, u.feed_time)


# -- BoltOdds ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bolt_frames_parsed(bolt_samples: dict[str, list[dict]]) -> list[dict]:
    return [f for action in bolt_samples for f in bolt_samples[action]]


@settings(max_examples=250, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_poison_boltodds_value_drops_only_its_outcome(
    data: st.DataObject, bolt_frames_parsed: list[dict], warnings: list[str]
) -> None:
    frame = copy.deepcopy(data.draw(st.sampled_from(bolt_frames_parsed), label="frame"))
    outcomes: dict = frame["data"]["outcomes"]
    key = data.draw(st.sampled_from(sorted(outcomes)), label="outcome")
    field = data.draw(st.sampled_from(["odds", "outcome_line"]), label="field")
    value = data.draw(st.sampled_from(EXTREMES), label="value")
    original = outcomes[key]
    if original["odds"] in (None, ""):  # a suspended outcome has no price to poison
        field = "outcome_line"
    clean = orjson.dumps(frame)
    alone = orjson.dumps({**frame, "data": {**frame["data"], "outcomes": {key: original}}})
    outcomes[key] = {**original, field: put(value)}

    warnings.clear()
    clean_stream, stream = BoltOddsStream(), BoltOddsStream()
    expected = Counter(key_of(u) for u in unbatched(clean_stream.decode(clean, AT)) if isinstance(u, OddsUpdate))
    got_updates = [u for u in unbatched(stream.decode(wire(frame, value), AT)) if isinstance(u, OddsUpdate)]
    got = Counter(key_of(u) for u in got_updates)
    [own] = [key_of(u) for u in unbatched(BoltOddsStream().decode(alone, AT)) if isinstance(u, OddsUpdate)]
    others = expected - Counter([own])

    ok = plausible_american(value, strings=True) if field == "odds" else plausible_line(value)
    if field == "odds" and value == "":
        ok = True  # "" is BoltOdds' "no odds": a suspended update, not bad input
    if ok:
        assert stream.stats.bad_total == 0 and warnings == []
        assert got - others and sum(got.values()) == sum(expected.values())
        [poison] = got - others
        if field == "odds" and value != "":
            assert poison[2] == pytest.approx(american_to_decimal(as_number(value)))  # type: ignore[arg-type]
    else:
        # Dropped alone: counted once, logged once naming the outcome, the rest unchanged.
        assert got == others, (field, value)
        assert stream.stats["bad_outcome"] == 1 and stream.stats.bad_total == 1
        assert len(warnings) == 1 and "bad_outcome" in warnings[0] and repr(key) in warnings[0]
    # Every update that got through carries a plausible price.
    assert all(u.price is None or PRICE_MIN <= u.price <= PRICE_MAX for u in got_updates)


def test_a_replace_set_withdraws_an_outcome_whose_new_price_is_poison(bolt_samples: dict) -> None:
    """A `game_update` (a replace set) whose price for one outcome is now "1e30": the old quote
    is suspended, never left standing; the other outcomes update."""
    first = bolt_samples["game_update"][0]
    stream = BoltOddsStream()
    before = {u.selection for u in unbatched(stream.decode(orjson.dumps(first), AT)) if isinstance(u, OddsUpdate)}
    second = copy.deepcopy(first)
    key = next(k for k, o in second["data"]["outcomes"].items() if o["odds"])
    second["data"]["outcomes"][key]["odds"] = "1e30"
    [batch] = stream.decode(orjson.dumps(second), AT)
    assert isinstance(batch, OddsBatch)
    suspended = [u for u in batch.updates if u.suspended]
    assert len(suspended) == 1 and suspended[0].selection in before and suspended[0].price is None
    assert sum(not u.suspended for u in batch.updates) == len(second["data"]["outcomes"]) - 1
    assert stream.stats["bad_outcome"] == 1 and stream.stats.bad_total == 1


def test_a_frame_with_a_nan_literal_keeps_its_other_outcomes(bolt_samples: dict) -> None:
    """orjson refuses `NaN`; the frame is read again and only the poisoned outcome is lost."""
    frame = copy.deepcopy(bolt_samples["initial_state"][0])
    keys = sorted(frame["data"]["outcomes"])
    frame["data"]["outcomes"][keys[0]]["odds"] = POISON_TOKEN
    frame["data"]["outcomes"][keys[1]]["outcome_line"] = POISON_TOKEN + "2"
    text = orjson.dumps(frame).decode().replace(f'"{POISON_TOKEN}"', "NaN").replace(f'"{POISON_TOKEN}2"', "1e400")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(text)
    stream = BoltOddsStream()
    got = [u for u in unbatched(stream.decode(text, AT)) if isinstance(u, OddsUpdate)]
    assert len(got) == len(keys) - 2
    assert stream.stats["bad_outcome"] == 2 and stream.stats["malformed_json"] == 0


# -- The Odds API -----------------------------------------------------------------------------


def _decimal_board(board: list[dict]) -> list[dict]:
    """The same board with decimal prices (The Odds API `oddsFormat=decimal`)."""
    out = copy.deepcopy(board)
    for event in out:
        for book in event["bookmakers"]:
            for market in book["markets"]:
                for o in market["outcomes"]:
                    o["price"] = round(american_to_decimal(o["price"]), 4)
    return out


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_poison_oddsapi_value_costs_only_its_bookmaker_section(data: st.DataObject) -> None:
    """The poisoned bookmaker section of one event keeps its previous prices, unconfirmed (the
    unit the book can keep); every other section and event diffs exactly as without the poison."""
    fmt = data.draw(st.sampled_from(["american", "decimal"]), label="format")
    first, second = (s["data"] for s in snapshots(FIRST3)[:2])
    if fmt == "decimal":
        first, second = _decimal_board(first), _decimal_board(second)
    board = copy.deepcopy(second)
    event = data.draw(st.sampled_from([e for e in board if e["bookmakers"]]), label="event")
    book = data.draw(st.sampled_from(event["bookmakers"]), label="bookmaker")
    market = data.draw(st.sampled_from(book["markets"]), label="market")
    outcome = data.draw(st.sampled_from(market["outcomes"]), label="outcome")
    field = data.draw(st.sampled_from(["price", "point"] if "point" in outcome else ["price"]), label="field")
    value = data.draw(st.sampled_from(EXTREMES), label="value")
    outcome[field] = put(value)
    body = json.loads(wire(board, value))  # what httpx's response.json() reads: NaN and 10**400 included

    clean, differ = OddsApiDiffer(odds_format=fmt), OddsApiDiffer(odds_format=fmt)
    clean.snapshot(first, T0)
    differ.snapshot(first, T0)
    [want] = clean.snapshot(second, T1)
    [got] = differ.snapshot(body, T1)
    assert isinstance(want, OddsBatch) and isinstance(got, OddsBatch)

    if field == "price":
        ok = plausible_american(value, strings=False) if fmt == "american" else plausible_decimal(value)
    else:
        ok = plausible_line(value)
    assert got.cleared == want.cleared
    if ok:
        assert differ.stats.bad_total == 0 and got.unconfirmed == ()
        return
    section = (event["id"], book["key"])
    kept = [u for u in want.updates if (u.feed_ids["oddsapi_event_id"], u.bookmaker) != section]
    assert [key_of(u) for u in got.updates] == [key_of(u) for u in kept]
    [(fixture, bookmaker)] = got.unconfirmed
    assert bookmaker == book["key"] and (fixture.home, fixture.away) == (event["home_team"], event["away_team"])
    assert differ.stats["bad_bookmaker"] == 1 and differ.stats.bad_total == 1


def test_oddsapi_prices_are_read_in_the_stated_format_never_guessed() -> None:
    """A decimal 100.0 is a 99-to-1 price, an American 100 is even money; neither is guessed."""
    board = copy.deepcopy(snapshots(FIRST3)[0]["data"][:1])
    decimal = _decimal_board(board)
    decimal[0]["bookmakers"][0]["markets"][0]["outcomes"][0]["price"] = 100.0
    [batch] = OddsApiDiffer(odds_format="decimal").snapshot(decimal, T0)
    assert isinstance(batch, OddsBatch)
    assert batch.updates[0].price == 100.0 and batch.updates[0].american == 9900
    board[0]["bookmakers"][0]["markets"][0]["outcomes"][0]["price"] = 100
    [batch] = OddsApiDiffer(odds_format="american").snapshot(board, T0)
    assert isinstance(batch, OddsBatch)
    assert batch.updates[0].price == 2.0 and batch.updates[0].american == 100
    with pytest.raises(OddsError, match="unknown odds format"):
        parse_price(100, "auto")  # type: ignore[arg-type]


# -- the bounds themselves, and the MQTT odds-in payload ----------------------------------------


@pytest.mark.parametrize(("value", "price"), [
    ("-200000", 1.0005), ("+15000", 151.0), (AMERICAN_MAX, 10_001.0), (-AMERICAN_MAX, 1.0001), ("+100", 2.0),
])
def test_the_widest_real_quotes_are_plausible(value: object, price: float) -> None:
    assert feed_american(value)[0] == pytest.approx(price)


@pytest.mark.parametrize("value", ["1e30", 1e307, "inf", "nan", 0, "-0", "+50", AMERICAN_MAX + 1, 10**400, True, None])
def test_impossible_american_odds_raise(value: object) -> None:
    with pytest.raises(OddsError):
        feed_american(value)


@pytest.mark.parametrize("value", [1e30, "-1e30", "inf", "nan", "Infinity", "sNaN", 10**30, pytest.param(10**5000, id="10**5000"), "1" * 100,
                                   10_000.5, True, [1]])
def test_impossible_lines_raise(value: object) -> None:
    with pytest.raises(LineError):
        to_line(value)


@pytest.mark.parametrize(("value", "line"), [(10_000, Decimal(10_000)), ("-0", Decimal(0)), (-409.5, Decimal("-409.5"))])
def test_extreme_real_lines_pass(value: object, line: Decimal) -> None:
    assert to_line(value) == line


MQTT_ITEM = {"bookmaker": "dk", "sport": "NFL", "home": "Miami Dolphins", "away": "Washington Commanders",
             "start_time": "2025-11-16T14:30:00Z", "market": "total", "line": "47.5", "outcome": "over",
             "price": 1.91}


@pytest.mark.parametrize(("field", "value"), [
    ("price", 1e307), ("price", 10_001.5), ("price", 1.00001), ("american", 10**30), ("american", -(AMERICAN_MAX + 1)),
    ("line", "1e30"), ("line", 10**30), ("line", "NaN"), ("line", "Infinity"),
])
def test_mqtt_odds_in_refuses_impossible_numbers_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(OddsPayloadError, match=f"^{field}: "):
        decode_item({**MQTT_ITEM, field: value}, source="mqtt", received_at=T0)


def test_mqtt_odds_in_takes_plausible_extremes() -> None:
    assert decode_item({**MQTT_ITEM, "price": 100.0}, source="mqtt", received_at=T0).price == 100.0
    update = decode_item({**MQTT_ITEM, "price": None, "american": -200000}, source="mqtt", received_at=T0)
    assert update.price == pytest.approx(1.0005)
