"""Operator notifications reach a real webhook (bot/notify): apprise's json:// POSTs to an HTTP
server on a loopback port that records every request, so what is checked is what left the bot.

Proved here: halt and breaker messages arrive with their reason and the instance prefix; a
registered secret (and a URL's own password) arrives masked and appears in no body, header or log
line; a second message of a kind within its interval is folded into the next ("+1 more") and
what is still folded at stop is sent; a switched-off kind sends nothing; a receiver that is down
or hangs neither blocks nor breaks `send` and is counted failed; `stop()` drains the queue;
`DeclineBurst` fires once per burst (checked against a brute-force reading).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loguru import logger
from pydantic import SecretStr, ValidationError

from bot.config import secrets
from bot.config.errors import format_validation_error
from bot.notify import DeclineBurst, Kind, Notifier, NotifyConfig, events
from bot.notify.events import next_daily
from bot.notify.notifier import url_secrets

AT = datetime(2025, 11, 16, 18, 0, tzinfo=UTC)
API_KEY = "sk-live-7Hq2ZpX9wLm4"  # stands for an ABP / odds API key from Settings


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    raw: bytes
    data: dict[str, Any] = field(default_factory=dict)


class Receiver:
    """A webhook on a free loopback port recording every POST. `hold` keeps requests unanswered
    until set (a receiver that hangs)."""

    def __init__(self) -> None:
        self.posts: list[Post] = []
        self.arrived = threading.Condition()
        self.hold = threading.Event()
        self.hold.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.arrived:
                    receiver.posts.append(Post(self.path, dict(self.headers), raw, json.loads(raw)))
                    receiver.arrived.notify_all()
                receiver.hold.wait(10)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.server.server_port}/hook"

    def wait_for(self, count: int, timeout: float = 10) -> list[Post]:
        """Block (in a worker thread) until `count` POSTs arrived; the POSTs."""
        with self.arrived:
            assert self.arrived.wait_for(lambda: len(self.posts) >= count, timeout), self.posts
            return list(self.posts)

    async def arrival(self, count: int) -> list[Post]:
        return await asyncio.to_thread(self.wait_for, count)

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every loguru line (DEBUG and up) and every apprise stdlib log line, formatted."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(str(m)), level="DEBUG", format="{message}")
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    apprise_log = logging.getLogger("apprise")
    old_level = apprise_log.level
    apprise_log.addHandler(handler)
    apprise_log.setLevel(logging.DEBUG)
    yield lines
    logger.remove(sink)
    apprise_log.removeHandler(handler)
    apprise_log.setLevel(old_level)


@pytest.fixture(autouse=True)
def no_secrets_left() -> Iterator[None]:
    yield
    secrets.forget_all()  # the Notifier registers its URLs process-wide


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens once the socket is closed


def _config(*urls: str, **kw: Any) -> NotifyConfig:
    return NotifyConfig(urls=[SecretStr(u) for u in urls], **kw)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# -- delivery ---------------------------------------------------------------------------------


async def test_halt_and_breaker_messages_arrive_with_reason_instance_and_times(receiver: Receiver) -> None:
    notifier = Notifier(_config(receiver.url), instance="bot7", zone="Europe/Berlin")
    await notifier.start()
    notifier.send(Kind.HALT, events.halt("daily loss limit 1000 EUR reached", at=AT, zone="Europe/Berlin"))
    notifier.send("breaker_open", events.breaker_open("pinnacle", "5 consecutive failures", at=AT,
                                                      zone="Europe/Berlin", cooldown_seconds=60))
    halt, breaker = await receiver.arrival(2)
    await notifier.stop()

    assert halt.path == "/hook"
    assert halt.data["title"] == "[bot7] Trading HALTED"
    assert "Reason: daily loss limit 1000 EUR reached" in halt.data["message"]
    assert "2025-11-16 18:00:00 UTC (19:00:00 CET, Europe/Berlin)" in halt.data["message"]
    assert halt.data["type"] == "failure"
    assert breaker.data["title"] == "[bot7] Circuit breaker OPEN: pinnacle"
    assert "5 consecutive failures" in breaker.data["message"]
    assert "orders to bookmaker pinnacle" in breaker.data["message"]
    assert notifier.stats["sent"] == {"halt": 1, "breaker_open": 1}


async def test_a_secret_in_a_message_arrives_masked_and_is_in_no_body_header_or_log(
        receiver: Receiver, log_lines: list[str]) -> None:
    secrets.register([API_KEY])  # as setup_logging does for every SecretStr of Settings
    url_password = "hookPassw0rd-91"
    host_url = receiver.url.replace("json://", f"json://ops:{url_password}@")
    notifier = Notifier(_config(host_url), instance="bot1")
    await notifier.start()
    reason = f"ABP refused key {API_KEY} (GET /odds?apiKey={API_KEY}); webhook pass {url_password}"
    notifier.send(Kind.HALT, events.halt(reason, at=AT))
    notifier.send(Kind.STOP, events.stop(at=AT, reason=f"title leak {API_KEY}"))
    await receiver.arrival(2)
    await notifier.stop()

    bodies = [p.raw.decode() for p in receiver.posts]
    headers = [json.dumps(p.headers) for p in receiver.posts]
    assert secrets.MASK in receiver.posts[0].data["message"]
    assert receiver.posts[0].data["message"].count(secrets.MASK) == 3
    for text in [*bodies, *headers, *log_lines]:
        assert API_KEY not in text
    for text in [*bodies, *log_lines]:
        assert url_password not in text
    # the receiver is still told who calls: the URL's password goes as HTTP Basic auth, and only there
    assert receiver.posts[0].headers["Authorization"] == "Basic " + base64.b64encode(
        f"ops:{url_password}".encode()).decode()
    assert any("Sent JSON POST notification" in line for line in log_lines)  # apprise's lines were captured


def test_the_tokens_of_chat_urls_are_registered_as_secrets() -> None:
    import apprise

    tg_token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    discord = ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", "JHMHI8qBe7bk2ZwO5U711o3dV_js")
    for url, token in ((f"tgram://{tg_token}/-1001234", tg_token), discord):
        plugin = apprise.Apprise.instantiate(url)
        found = url_secrets(url, plugin)
        assert url in found and token in found
        secrets.register(found)
        assert token not in secrets.mask_text(f"call failed: https://api.example/bot{token}/send")


async def test_a_second_halt_within_the_interval_is_folded_into_the_next(receiver: Receiver) -> None:
    clock = FakeMonotonic()
    notifier = Notifier(_config(receiver.url, min_interval_seconds=60), instance="bot1", monotonic=clock)
    await notifier.start()
    notifier.send(Kind.HALT, events.halt("operator A", at=AT))
    clock.now += 10
    notifier.send(Kind.HALT, events.halt("kill switch B", at=AT))  # within 60 s: folded
    notifier.send(Kind.RESUME, events.resume("operator resume", at=AT))  # another kind: own limit
    await receiver.arrival(2)
    clock.now += 55  # 65 s after the first halt
    notifier.send(Kind.HALT, events.halt("drawdown C", at=AT))
    posts = await receiver.arrival(3)
    clock.now += 5
    notifier.send(Kind.HALT, events.halt("emergency D", at=AT))  # folded again, pending at stop
    await notifier.stop()
    posts = receiver.posts

    assert [p.data["title"] for p in posts[:3]] == ["[bot1] Trading HALTED", "[bot1] Trading resumed",
                                                    "[bot1] Trading HALTED"]
    third = posts[2].data["message"]
    assert "Reason: drawdown C" in third
    assert "+1 more halt message(s)" in third and "kill switch B" in third
    assert "operator A" not in third
    assert len(posts) == 4  # D is not lost: stop() sends what is still folded
    assert posts[3].data["title"] == "[bot1] 1 more halt message(s) held back"
    assert "emergency D" in posts[3].data["message"]
    assert notifier.stats["folded"] == {"halt": 2}
    assert notifier.stats["sent"] == {"halt": 3, "resume": 1}


async def test_a_switched_off_kind_sends_nothing(receiver: Receiver) -> None:
    notifier = Notifier(_config(receiver.url, kinds={"daily_pnl": False}), instance="bot1")
    await notifier.start()
    notifier.send(Kind.DAILY_PNL, events.daily_pnl("2025-11-16", Decimal("12.50"), 4, Decimal("0.05"), "EUR", at=AT))
    notifier.send(Kind.HALT, events.halt("after the summary", at=AT))
    await receiver.arrival(1)  # delivery is in order: a summary would have come first
    await notifier.stop()
    assert [p.data["title"] for p in receiver.posts] == ["[bot1] Trading HALTED"]
    assert notifier.stats["disabled"] == {"daily_pnl": 1}


async def test_a_receiver_that_is_down_neither_raises_nor_blocks_and_is_counted(log_lines: list[str]) -> None:
    url = f"json://127.0.0.1:{_closed_port()}/hook"
    notifier = Notifier(_config(url, min_interval_seconds=0), instance="bot1")
    await notifier.start()
    started = time.perf_counter()
    for i in range(3):
        notifier.send(Kind.BREAKER_OPEN, events.breaker_open(f"book{i}", "timeouts", at=AT))
    assert time.perf_counter() - started < 0.05  # queued, not sent inline
    await notifier.stop()
    assert notifier.stats["failed"] == {"breaker_open": 3}
    assert notifier.stats["sent"] == {}
    failures = [line for line in log_lines if "not delivered" in line]
    assert len(failures) == 3
    assert all(url not in line and "127.0.0.1:" not in line for line in failures)


async def test_a_hanging_receiver_does_not_block_the_loop_and_times_out(receiver: Receiver) -> None:
    receiver.hold.clear()
    notifier = Notifier(_config(receiver.url, timeout_seconds=0.5), instance="bot1")
    await notifier.start()
    notifier.send(Kind.HALT, events.halt("slow hook", at=AT))
    await receiver.arrival(1)
    # the request is in flight and unanswered, yet this coroutine runs: the loop is free
    assert notifier.stats["sent"] == {} and notifier.stats["failed"] == {}
    await notifier.stop()  # the 0.5 s delivery timeout ends it
    assert notifier.stats["failed"] == {"halt": 1}


async def test_stop_drains_every_queued_message(receiver: Receiver) -> None:
    notifier = Notifier(_config(receiver.url), instance="bot1")
    await notifier.start()
    kinds = [Kind.START, Kind.EMERGENCY_ON, Kind.HALT, Kind.EMERGENCY_OFF, Kind.RESUME]
    notifier.send(kinds[0], events.start(at=AT, mode="paper"))
    notifier.send(kinds[1], events.emergency_on("venue pause", at=AT))
    notifier.send(kinds[2], events.halt("venue emergency: venue pause", at=AT))
    notifier.send(kinds[3], events.emergency_off("cleared", at=AT))
    notifier.send(kinds[4], events.resume("operator resume", at=AT))
    assert notifier.queued == 5  # nothing went yet: the delivery task has not run
    await notifier.stop()
    assert len(receiver.posts) == 5
    assert notifier.stats["sent"] == dict.fromkeys(kinds, 1)
    assert notifier.stats["dropped"] == {}
    notifier.send(Kind.STOP, events.stop(at=AT))  # after stop: counted, not queued
    assert notifier.stats["dropped"] == {"stop": 1} and notifier.queued == 0


async def test_without_urls_the_notifier_only_counts() -> None:
    notifier = Notifier(NotifyConfig(kinds={"stop": False}), instance="bot1")
    await notifier.start()
    notifier.send(Kind.HALT, events.halt("x", at=AT))
    notifier.send(Kind.STOP, events.stop(at=AT))
    notifier.send("no_such_kind", events.stop(at=AT))  # logged, never raised
    await notifier.stop()
    assert not notifier.active
    assert notifier.stats["no_target"] == {"halt": 1}
    assert notifier.stats["disabled"] == {"stop": 1}


async def test_a_burst_of_declines_is_one_notification(receiver: Receiver) -> None:
    notifier = Notifier(_config(receiver.url, decline_burst=5, decline_window_seconds=60), instance="bot1")
    await notifier.start()
    for i in range(12):  # one burst: 12 rejections within 12 s
        notifier.declined(AT + timedelta(seconds=i), "PRICE_MOVED" if i % 3 else "STAKE_BELOW_MIN")
    notifier.send(Kind.HALT, events.halt("marker", at=AT))
    posts = await receiver.arrival(2)
    await notifier.stop()
    assert [p.data["title"] for p in posts] == ["[bot1] Burst of rejected signals", "[bot1] Trading HALTED"]
    assert "5 signals rejected within 60 s" in posts[0].data["message"]
    assert "PRICE_MOVED x3, STAKE_BELOW_MIN x2" in posts[0].data["message"]


# -- config -----------------------------------------------------------------------------------


def test_config_rejects_unknown_kinds_bad_times_and_urls_without_quoting_them() -> None:
    with pytest.raises(ValidationError) as exc:
        NotifyConfig(kinds={"halted": False})
    [line] = format_validation_error(exc.value)
    assert "unknown kind 'halted' (known: start, stop, halt, resume" in line and "daily_pnl)" in line

    with pytest.raises(ValidationError) as exc:
        NotifyConfig(daily_summary_at="24:10")
    assert "HH:MM" in format_validation_error(exc.value)[0]

    with pytest.raises(ValidationError) as exc:
        NotifyConfig(urls=[SecretStr("json://ok.example/h"), SecretStr("nosuch://tok3nV4lue99/x")])
    [line] = format_validation_error(exc.value)
    assert "urls[1]: apprise does not understand this URL (scheme 'nosuch://')" in line
    assert "tok3nV4lue99" not in line

    config = NotifyConfig(kinds={"daily_pnl": False}, daily_summary_at="7:05")
    assert config.enabled("halt") and not config.enabled("daily_pnl")
    assert config.summary_time().isoformat() == "07:05:00"


# -- pure helpers -----------------------------------------------------------------------------


def test_daily_pnl_names_currency_units_and_both_times() -> None:
    msg = events.daily_pnl("2025-11-16", Decimal("-12.5"), 7, Decimal("-0.0312"), "EUR", at=AT,
                           zone="America/New_York")
    assert msg.title == "Daily PnL 2025-11-16: -12.50 EUR"
    assert "Settled PnL: -12.50 EUR" in msg.body and "Bets settled: 7" in msg.body
    assert "ROI on settled stake: -3.12 %" in msg.body
    assert "2025-11-16 18:00:00 UTC (13:00:00 EST, America/New_York)" in msg.body
    assert "n/a" in events.daily_pnl("d", Decimal(0), 0, None, "USD", at=AT).body


def test_the_daily_summary_is_due_at_the_local_time_across_dst() -> None:
    from datetime import time as clock_time

    # Europe/London: 23:55 local is 23:55 UTC in winter, 22:55 UTC in summer
    assert next_daily(AT, clock_time(23, 55), "Europe/London") == datetime(2025, 11, 16, 23, 55, tzinfo=UTC)
    summer = datetime(2025, 7, 1, 23, 0, tzinfo=UTC)  # already past 22:55 UTC
    assert next_daily(summer, clock_time(23, 55), "Europe/London") == datetime(2025, 7, 2, 22, 55, tzinfo=UTC)


def _bursts_brute_force(times: list[datetime], threshold: int, window: timedelta) -> list[int]:
    """Indices where a burst starts: the threshold is reached in (t - window, t], and it was not
    reached at any earlier observation within `window` before t."""
    hot = [sum(1 for u in times[: i + 1] if u > t - window) >= threshold for i, t in enumerate(times)]
    return [i for i, t in enumerate(times)
            if hot[i] and not any(hot[j] and t - times[j] < window for j in range(i))]


@settings(max_examples=300, deadline=None)
@given(gaps=st.lists(st.integers(0, 40), min_size=1, max_size=60), threshold=st.integers(1, 6),
       window=st.integers(1, 30))
def test_decline_burst_fires_once_per_burst(gaps: list[int], threshold: int, window: int) -> None:
    times, t = [], AT
    for gap in gaps:
        t += timedelta(seconds=gap)
        times.append(t)
    burst = DeclineBurst(threshold, window)
    fired = [i for i, at in enumerate(times) if burst.observe(at)]
    assert fired == _bursts_brute_force(times, threshold, timedelta(seconds=window))
    assert burst.bursts == len(fired)


def test_decline_burst_rearms_only_after_a_quiet_window() -> None:
    burst = DeclineBurst(3, 60)
    at = [AT + timedelta(seconds=s) for s in (0, 1, 2, 50, 100, 101, 170, 171, 172)]
    assert [burst.observe(t) for t in at] == [
        False, False, True,  # 3 within 60 s: a burst
        False,               # t=50: 4 in the window, the same burst
        False, False,        # t=100 below the threshold, t=101 at it again, 51 s after t=50: same burst
        False, False, True,  # 69 s without the threshold: re-armed, a new burst
    ]
    assert burst.bursts == 2
