"""Prometheus metrics read from `Operated.metrics()` at scrape time (nothing is counted on the
bot's hot path: the engine keeps its own counters and this collector only formats them).

`Operated.metrics()` shape (all numbers; counters cumulative since start):

    {"counters": {"events": int, "odds_updates": int, "signals": int, "errors": int,
                  "settled": int, "fills": int},
     "decisions": [{"verdict": str, "reason": str, "count": int}, ...],
     "orders_by_status": {status: int},
     "feeds": {name: {"events": int, "lag_seconds": float | None}},
     "exposure": {"total": float, "by_strategy": {name: float}},
     "pnl": {"today": float, "settled": float},
     "breakers": {name: 0 | 1},                       # 1 = open
     "tick_to_order_seconds": {"buckets": [[le, cumulative count], ...], "count": int, "sum": float},
     "ledger": {"write_failing": 0 | 1, "refused_writes": int},
     "mqtt": {"dropped": int}}

Families (prefix `bot_`; money in the account currency, times in seconds): counters
bot_events_total, bot_odds_updates_total, bot_signals_total, bot_errors_total, bot_settled_total,
bot_fills_total, bot_decisions_total{verdict,reason}, bot_feed_events_total{feed},
bot_ledger_refused_writes_total, bot_mqtt_dropped_total; gauges bot_orders{status},
bot_feed_lag_seconds{feed} (absent for a feed with no lag yet), bot_exposure{strategy},
bot_exposure_total, bot_pnl_today, bot_pnl_settled, bot_breaker_open{breaker},
bot_ledger_write_failing; histogram bot_tick_to_order_seconds. A missing key in the engine's
dict yields the family with no sample (or 0 for unlabelled ones), never a failed scrape.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

_COUNTERS = {
    "events": "Events processed by the engine.",
    "odds_updates": "Odds updates applied to the odds book.",
    "signals": "Signals emitted by strategies.",
    "errors": "Errors caught and logged by the engine.",
    "settled": "Bets settled.",
    "fills": "Order fills received from the venue.",
}


def _num(value: Any) -> float:
    """A sample value; anything not a finite-or-infinite number becomes NaN (never a failed scrape)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _map(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


class OperatedCollector(Collector):
    """Builds every `bot_` family from one `metrics()` call per scrape."""

    def __init__(self, read: Callable[[], Mapping[str, Any]]) -> None:
        self._read = read

    def describe(self) -> list[Metric]:
        return []  # registration must not call the engine; names are fixed anyway

    def collect(self) -> Iterator[Metric]:
        data = self._read()
        counters = _map(data, "counters")
        for key, doc in _COUNTERS.items():
            yield CounterMetricFamily(f"bot_{key}", doc, value=_num(counters.get(key, 0)))

        decisions = CounterMetricFamily("bot_decisions", "Risk decisions by verdict and reason.",
                                        labels=["verdict", "reason"])
        for row in data.get("decisions") or []:
            if isinstance(row, Mapping):
                decisions.add_metric([str(row.get("verdict", "")), str(row.get("reason", ""))],
                                     _num(row.get("count", 0)))
        yield decisions

        orders = GaugeMetricFamily("bot_orders", "Orders by status.", labels=["status"])
        for status, count in _map(data, "orders_by_status").items():
            orders.add_metric([str(status)], _num(count))
        yield orders

        feed_events = CounterMetricFamily("bot_feed_events", "Events received per feed.", labels=["feed"])
        feed_lag = GaugeMetricFamily("bot_feed_lag_seconds", "Seconds since the feed's last update.",
                                     labels=["feed"])
        for feed, stats in _map(data, "feeds").items():
            stats = stats if isinstance(stats, Mapping) else {}
            feed_events.add_metric([str(feed)], _num(stats.get("events", 0)))
            if stats.get("lag_seconds") is not None:
                feed_lag.add_metric([str(feed)], _num(stats["lag_seconds"]))
        yield feed_events
        yield feed_lag

        exposure = _map(data, "exposure")
        by_strategy = GaugeMetricFamily("bot_exposure", "Open exposure (pending + unsettled stake) per strategy.",
                                        labels=["strategy"])
        for name, value in _map(exposure, "by_strategy").items():
            by_strategy.add_metric([str(name)], _num(value))
        yield by_strategy
        yield GaugeMetricFamily("bot_exposure_total", "Open exposure, all strategies.",
                                value=_num(exposure.get("total", 0)))

        pnl = _map(data, "pnl")
        yield GaugeMetricFamily("bot_pnl_today", "Settled profit and loss today (UTC day).",
                                value=_num(pnl.get("today", 0)))
        yield GaugeMetricFamily("bot_pnl_settled", "Settled profit and loss since the ledger began.",
                                value=_num(pnl.get("settled", 0)))

        breakers = GaugeMetricFamily("bot_breaker_open", "1 while the circuit breaker is open.", labels=["breaker"])
        for name, value in _map(data, "breakers").items():
            breakers.add_metric([str(name)], _num(value))
        yield breakers

        yield _histogram(_map(data, "tick_to_order_seconds"))

        ledger = _map(data, "ledger")
        yield GaugeMetricFamily("bot_ledger_write_failing", "1 while ledger writes fail.",
                                value=_num(ledger.get("write_failing", 0)))
        yield CounterMetricFamily("bot_ledger_refused_writes", "Ledger writes refused.",
                                  value=_num(ledger.get("refused_writes", 0)))
        yield CounterMetricFamily("bot_mqtt_dropped", "Droppable MQTT events dropped on a full queue.",
                                  value=_num(_map(data, "mqtt").get("dropped", 0)))


def _histogram(hist: Mapping[str, Any]) -> HistogramMetricFamily:
    """bot_tick_to_order_seconds from cumulative buckets `[[le, count], ...]` (le ascending);
    a `+Inf` bucket holding `count` is added when the engine's list does not end with one."""
    buckets: list[tuple[str, float]] = []
    for pair in hist.get("buckets") or []:
        if isinstance(pair, list | tuple) and len(pair) == 2:
            buckets.append((floatToGoString(_num(pair[0])), _num(pair[1])))
    count = _num(hist.get("count", 0))
    if not buckets or buckets[-1][0] != "+Inf":
        buckets.append(("+Inf", count))
    return HistogramMetricFamily(
        "bot_tick_to_order_seconds", "Seconds from the odds tick to the order sent.",
        buckets=buckets, sum_value=_num(hist.get("sum", 0)),
    )


def registry_for(read: Callable[[], Mapping[str, Any]]) -> CollectorRegistry:
    """A registry of its own (never the process-global one) holding only the bot's collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(OperatedCollector(read))
    return registry
