"""/metrics: Prometheus text read from the engine at scrape time (bot.web.metrics)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bot.web.metrics import registry_for
from tests.web.conftest import TOKEN, FakeOperated, Served, serve, web_config

AUTH = {"Authorization": f"Bearer {TOKEN}"}

# family name as the parser reports it (counters lose `_total`) -> type
FAMILIES = {
    "bot_events": "counter", "bot_odds_updates": "counter", "bot_signals": "counter",
    "bot_errors": "counter", "bot_settled": "counter", "bot_fills": "counter",
    "bot_decisions": "counter", "bot_orders": "gauge", "bot_feed_events": "counter",
    "bot_feed_lag_seconds": "gauge", "bot_exposure": "gauge", "bot_exposure_total": "gauge",
    "bot_pnl_today": "gauge", "bot_pnl_settled": "gauge", "bot_breaker_open": "gauge",
    "bot_tick_to_order_seconds": "histogram", "bot_ledger_write_failing": "gauge",
    "bot_ledger_refused_writes": "counter", "bot_mqtt_dropped": "counter",
}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


@pytest.fixture
def client(served: Served) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served.url, timeout=5) as c:
        yield c


def test_every_family_is_exposed_with_its_type(client: httpx.Client) -> None:
    r = client.get("/metrics", headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    types = {f.name: f.type for f in text_string_to_metric_families(r.text)}
    assert types == FAMILIES  # every family, nothing from the process-global registry


def test_a_second_scrape_sees_the_engines_counters_move(client: httpx.Client, fake: FakeOperated) -> None:
    first = samples(client.get("/metrics", headers=AUTH).text)
    fake.bump(3)
    fake.pending = 1
    fake.lag_seconds = 42.0
    second = samples(client.get("/metrics", headers=AUTH).text)
    for name in ("bot_events_total", "bot_odds_updates_total", "bot_signals_total", "bot_errors_total",
                 "bot_settled_total", "bot_fills_total", "bot_mqtt_dropped_total"):
        assert second[(name, ())] == first[(name, ())] + 3, name
    assert first[("bot_events_total", ())] == 120
    assert second[("bot_feed_events_total", (("feed", "oddsapi"),))] == 483
    assert second[("bot_orders", (("status", "PENDING"),))] == 1
    assert second[("bot_feed_lag_seconds", (("feed", "oddsapi"),))] == 42.0


def test_labelled_values_and_the_histogram(client: httpx.Client) -> None:
    got = samples(client.get("/metrics", headers=AUTH).text)
    assert got[("bot_decisions_total", (("reason", "max_exposure"), ("verdict", "rejected")))] == 2
    assert got[("bot_breaker_open", (("breaker", "draftkings"),))] == 1
    assert got[("bot_breaker_open", (("breaker", "global"),))] == 0
    assert got[("bot_exposure", (("strategy", "value"),))] == 75.0
    assert got[("bot_exposure_total", ())] == 75.0 and got[("bot_pnl_settled", ())] == 12.5
    assert ("bot_feed_lag_seconds", (("feed", "mqtt"),)) not in got  # no lag yet: no sample, not 0
    assert got[("bot_tick_to_order_seconds_bucket", (("le", "0.01"),))] == 3
    assert got[("bot_tick_to_order_seconds_bucket", (("le", "+Inf"),))] == 4
    assert got[("bot_tick_to_order_seconds_count", ())] == 4
    assert got[("bot_tick_to_order_seconds_sum", ())] == pytest.approx(0.061)


def test_metrics_public_needs_no_token(fake: FakeOperated) -> None:
    running = serve(web_config(metrics_public=True), fake)
    served = next(running)
    try:
        assert httpx.get(served.url + "/metrics").status_code == 200
        assert httpx.get(served.url + "/api/status").status_code == 401  # the API still does
    finally:
        running.close()


def test_a_partial_engine_dict_still_scrapes() -> None:
    text = generate_latest(registry_for(lambda: {"counters": {"events": 5}, "feeds": {"x": None}})).decode()
    got = samples(text)
    assert got[("bot_events_total", ())] == 5 and got[("bot_signals_total", ())] == 0
    assert got[("bot_tick_to_order_seconds_bucket", (("le", "+Inf"),))] == 0
    assert {f.name for f in text_string_to_metric_families(text)} == set(FAMILIES)


_bounds = st.lists(st.floats(0.0001, 100, allow_nan=False), min_size=1, max_size=8, unique=True).map(sorted)


@given(_bounds, st.lists(st.integers(0, 1000), min_size=8, max_size=8), st.floats(0, 1e6, allow_nan=False))
def test_histogram_round_trips_any_cumulative_buckets(bounds: list[float], adds: list[int], total: float) -> None:
    counts = [sum(adds[: i + 1]) for i in range(len(bounds))]
    engine: dict[str, Any] = {"tick_to_order_seconds": {
        "buckets": [[b, c] for b, c in zip(bounds, counts, strict=True)] + [[math.inf, counts[-1]]],
        "count": counts[-1], "sum": total}}
    got = samples(generate_latest(registry_for(lambda: engine)).decode())
    buckets = sorted((float(dict(labels)["le"]), v) for (name, labels), v in got.items()
                     if name == "bot_tick_to_order_seconds_bucket")
    assert [v for _, v in buckets] == [*counts, counts[-1]]
    assert [le for le, _ in buckets][:-1] == pytest.approx(bounds) and buckets[-1][0] == math.inf
    assert got[("bot_tick_to_order_seconds_count", ())] == counts[-1]
