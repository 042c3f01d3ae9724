"""The Olympus feed against the local Olympus server on loopback (bot/feeds/olympus.py,
bot/sim/olympus_server.py): the board, the session lifecycle and one test per fault switch.
Timing is measured on the server side (its request log); nothing waits a fixed time."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.clock import ReplayClock
from bot.feeds.config import OlympusConfig
from bot.feeds.olympus import ACCOUNT_FILE, STATE_FILE, OlympusFeed, saved_account
from bot.sim.olympus_server import OlympusServer, serving
from bot.types import FeedEvent, OddsBatch

DATA = Path(__file__).parents[1] / "data" / "olympus" / "recorded.json"
KEY = "olympus-local-key"
E1 = "#AC#B12#C20426855#D19#E27164341#F19#"  # Lions @ Eagles (JSON records, props too)
E2 = "#AC#B12#C20426855#D19#E27164352#F19#"  # Chiefs @ Broncos (the text wire form)
E3 = "#AC#B1#C1#D8#E27180533#F3#"  # Arsenal v Tottenham (a JSON envelope)
COMP = "#AC#B12#C20426855#D48#E1453#F10#"
RACE = "#AC#B2#C101#D20#E184650#F2#"
MARKETS = "/matchmarkets/markets"
START = "/session/start"
T0 = datetime(2025, 11, 16, 18, 0, tzinfo=UTC)


def make_config(server: OlympusServer, **changes: Any) -> OlympusConfig:
    base: dict[str, Any] = {
        "base_url": server.url, "api_key": KEY,
        "events": [{"pd": E1, "props": True}, {"pd": E2}, {"pd": E3}], "racing": [RACE],
        "poll_seconds": 0.2, "backoff_initial_seconds": 0.4, "clock_check_seconds": 0.01,
        "requests_per_minute": 60_000, "timeout_seconds": 5,
        "user_agents": ["UA-one", "UA-two"], "proxies": ["http://u:p@10.0.0.1:8080", "http://u:p@10.0.0.2:8080"],
    }
    return OlympusConfig(**(base | changes))


class Running:
    def __init__(self, feed: OlympusFeed) -> None:
        self.feed = feed
        self.events: list[FeedEvent] = []
        self.changed = asyncio.Event()

    async def emit(self, event: FeedEvent) -> None:
        self.events.append(event)
        self.changed.set()

    @property
    def batches(self) -> list[OddsBatch]:
        return [e for e in self.events if isinstance(e, OddsBatch)]

    async def until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Until `predicate()` holds (a state change inside the feed, which signals nothing)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


@asynccontextmanager
async def running(feed: OlympusFeed) -> AsyncIterator[Running]:
    run = Running(feed)
    task = asyncio.create_task(feed.run(run.emit))
    try:
        yield run
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def quotes(batch: OddsBatch) -> dict[tuple[str, str, str], float | None]:
    return {(u.selection.fixture.home, str(u.selection.market), u.selection.outcome): u.price for u in batch.updates}


async def test_the_board_arrives_as_one_complete_batch_from_all_three_encodings(tmp_path: Path) -> None:
    async with serving(DATA) as server:
        feed = OlympusFeed(make_config(server, competitions=[COMP]), ReplayClock(T0), state_dir=tmp_path)
        async with running(feed) as run:
            await run.until(lambda: len(run.batches) >= 2)
    first, second = run.batches[:2]
    assert first.complete and not first.unconfirmed and not first.cleared
    q = quotes(first)
    assert q[("Philadelphia Eagles", "moneyline/game", "away")] == pytest.approx(1 + 5 / 6)  # Lions 5/6
    assert q[("Philadelphia Eagles", "spread/game@2.5", "home")] == pytest.approx(1 + 10 / 11)
    assert q[("Philadelphia Eagles", "player passing yards/game@215.5", "Jalen Hurts over")] == pytest.approx(1 + 10 / 11)
    assert q[("Denver Broncos", "moneyline/game", "home")] == pytest.approx(2.2)  # text form
    assert q[("Denver Broncos", "total/game@43.5", "under")] is None  # SU=1: suspended
    assert q[("Arsenal", "1x2/game", "draw")] == pytest.approx(4.5)  # envelope
    assert q[("Arsenal", "spread/game@-1.25", "home")] == pytest.approx(2.05)  # quarter line, its mean
    assert q[("Arsenal", "total/game@2.5", "under")] == pytest.approx(2.0)
    assert q[("Ascot 14:30", "win/game", "Jonbon")] == pytest.approx(2.5)
    assert len(q) == 6 + 4 + 6 + 7 + 4
    assert {u.bookmaker for u in first.updates} == {"bet365"}
    assert first.updates[0].selection.fixture.start_time == datetime(2025, 11, 17, 1, 20, tzinfo=UTC)
    # the second poll replays the next recorded response: the prices moved
    q2 = quotes(second)
    assert q2[("Philadelphia Eagles", "moneyline/game", "away")] == pytest.approx(1.8)
    assert q2[("Philadelphia Eagles", "total/game@47.5", "over")] == pytest.approx(1 + 20 / 23)
    withdrawn = [k for k, p in q2.items() if k[1] == "total/game@48.5"]
    assert withdrawn and all(q2[k] is None for k in withdrawn)  # the old line is withdrawn
    assert feed.stats.bad_total == 0
    # every request carried the key; the session calls happened before the market polls
    paths = [r["path"] for r in server.requests]
    assert paths[:3] == [START, "/session/info", "/session/status"]
    assert server.calls("/splashcontent/competitions_from_session")


async def test_the_server_is_strict_about_keys_sessions_and_parameters() -> None:
    async with serving(DATA) as server, httpx.AsyncClient(base_url=server.url) as client:
        h = {"X-API-Key": KEY}
        missing_key = await client.post(START, json={})
        assert missing_key.status_code == 401 and missing_key.json()["error"] == "invalid API key"
        assert missing_key.headers["X-Request-Id"]
        assert (await client.post(START, json={"speed": 1}, headers=h)).status_code == 400
        assert (await client.post(START, json={"bootstrap": "yes"}, headers=h)).status_code == 400
        assert (await client.post(START, json={"sst": "forged"}, headers=h)).status_code == 401
        sid = (await client.post(START, json={}, headers=h)).json()["sessionId"]
        assert (await client.post(MARKETS, json={"pd": E1}, headers=h)).status_code == 400
        unknown = await client.post(MARKETS, json={"sessionId": "b365-nope", "pd": E1}, headers=h)
        assert unknown.status_code == 401 and unknown.json()["error"] == "invalid session"
        assert (await client.post(MARKETS, json={"sessionId": sid}, headers=h)).status_code == 400
        assert (await client.post(MARKETS, json={"sessionId": sid, "pd": "#X#"}, headers=h)).status_code == 404
        assert (await client.get("/account/info", params={"sessionId": sid}, headers=h)).status_code == 403
        assert (await client.post(MARKETS, json={"sessionId": sid, "pd": E1}, headers=h)).status_code == 200
        server.expire_all()
        expired = await client.post(MARKETS, json={"sessionId": sid, "pd": E1}, headers=h)
        assert expired.status_code == 401


async def test_the_sst_is_persisted_and_a_restart_resumes_the_session(tmp_path: Path) -> None:
    async with serving(DATA) as server:
        feed = OlympusFeed(make_config(server), ReplayClock(T0), state_dir=tmp_path)
        async with running(feed) as run:
            await run.until(lambda: len(run.batches) >= 1)
        state = tmp_path / STATE_FILE
        assert stat.S_IMODE(state.stat().st_mode) == 0o600
        saved = json.loads(state.read_text())
        session = server.sessions[saved["sessionId"]]
        assert saved["sst"] == session.sst
        restarted = OlympusFeed(make_config(server), ReplayClock(T0), state_dir=tmp_path)
        async with running(restarted) as run2:
            await run2.until(lambda: len(run2.batches) >= 1)
    starts = server.calls(START)
    assert len(starts) == 2 and starts[1]["sst"] == session.sst  # resumed with the sst ...
    assert len(server.sessions) == 1  # ... the same session, no new one
    assert {r["sessionId"] for r in server.calls(MARKETS)} == {saved["sessionId"]}


async def test_session_expiry_mid_run_recovers_without_losing_the_schedule(tmp_path: Path) -> None:
    async with serving(DATA) as server:
        clock = ReplayClock(T0)
        feed = OlympusFeed(make_config(server), clock, state_dir=tmp_path)
        async with running(feed) as run:
            await run.until(lambda: len(run.batches) >= 1 and feed.next_keepalive is not None)
            keepalive_due = feed.next_keepalive
            before = len(run.batches)
            server.expire_all()
            await run.until(lambda: len(run.batches) >= before + 2)
            assert feed.next_keepalive == keepalive_due  # the keep-alive schedule did not move
    assert len(server.calls(MARKETS, 401)) == 1
    starts = server.calls(START)
    assert len(starts) == 2 and starts[1]["sst"] is not None  # renewed with the sst
    # no poll lost an event: every batch since the expiry holds the whole board, none kept unconfirmed
    for batch in run.batches[before:]:
        assert batch.complete and not batch.unconfirmed and not batch.cleared
        priced = [u for u in batch.updates if not u.suspended]
        assert len(priced) == 27 - 2  # the whole board (two quotes are suspended on it)
        assert {u.selection.fixture.home for u in priced} == {"Philadelphia Eagles", "Denver Broncos", "Arsenal",
                                                              "Ascot 14:30"}
    assert feed.sessions["resumed"] == 1 and feed.stats["http_401"] == 1


async def test_a_401_starts_a_new_session_and_retries_the_request_once(tmp_path: Path, warnings: list[str]) -> None:
    async with serving(DATA) as server:
        feed = OlympusFeed(make_config(server, events=[{"pd": E1}], racing=[]), ReplayClock(T0), state_dir=tmp_path)
        async with running(feed) as run:
            await run.until(lambda: len(run.batches) >= 1)
            server.faults.fail_401 = 1
            n = len(server.calls(MARKETS))
            await run.until(lambda: len(run.batches) >= 3)
            retried = server.calls(MARKETS)[n:n + 2]
            assert [r["status"] for r in retried] == [401, 200]
            assert retried[0]["sessionId"] != retried[1]["sessionId"]  # the retry runs on the new session
            assert len(server.calls(START)) == 2
            assert all(not b.unconfirmed for b in run.batches)
            # a 401 on the retry too: no second retry; the event keeps its prices, unconfirmed
            server.faults.paths = [MARKETS]
            server.faults.fail_401 = 2
            n = len(server.calls(MARKETS))
            seen = len(run.batches)
            await run.until(lambda: len(run.batches) >= seen + 2)
    window = server.calls(MARKETS)[n:]
    assert [r["status"] for r in window[:3]] == [401, 401, 200]
    assert any(b.unconfirmed for b in run.batches[seen:])
    # every error is logged with its request id and body; the session id the body echoes is masked
    errors = [w for w in warnings if "HTTP 401" in w]
    assert len([w for w in errors if MARKETS in w]) == 3 and all("request id req-" in w and "invalid session" in w for w in errors)
    assert not any(sid in w for w in warnings for sid in server.sessions)


async def test_a_429_backs_off_and_rotates_user_agent_and_proxy(tmp_path: Path) -> None:
    async with serving(DATA) as server:
        feed = OlympusFeed(make_config(server, events=[{"pd": E1}], racing=[]), ReplayClock(T0), state_dir=tmp_path)
        async with running(feed) as run:
            await run.until(lambda: len(run.batches) >= 1)
            server.faults.rate_limit = 1
            await server.wait_for(lambda: any(r["status"] == 429 for r in server.requests))
            limited = next(i for i, r in enumerate(server.requests) if r["status"] == 429)
            await server.wait_for(lambda: len(server.requests) > limited + 1)
    after = server.requests[limited + 1]
    assert after["at"] - server.requests[limited]["at"] >= 0.4  # measured on the server
    assert after["path"] == START and after["userAgent"] == "UA-two" and after["proxyUrl"] == "http://u:p@10.0.0.2:8080"
    assert feed.stats["rate_limited"] == 1 and feed.sessions["rotations"] == 1


async def test_a_429_retry_after_longer_than_the_backoff_is_honoured(tmp_path: Path) -> None:
    async with serving(DATA) as server:
        feed = OlympusFeed(make_config(server, events=[{"pd": E1}], racing=[]), ReplayClock(T0), state_dir=tmp_path)
        async with running(feed) as run:
            await run.until(lambda: len(run.batches) >= 1)
            server.faults.retry_after = 0.9
            server.faults.rate_limit = 1
            await server.wait_for(lambda: any(r["status"] == 429 for r in server.requests))
            limited = next(i for i, r in enumerate(server.requests) if r["status"] == 429)
            await server.wait_for(lambda: len(server.requests) > limited + 1)
    assert server.requests[limited + 1]["at"] - server.requests[limited]["at"] >= 0.9


async def test_a_403_backs_off_and_starts_a_session_on_the_next_user_agent(tmp_path: Path) -> None:
    async with serving(DATA) as server:
        feed = OlympusFeed(make_config(server, events=[{"pd": E1}], racing=[]), ReplayClock(T0), state_dir=tmp_path)
        async with running(feed) as run:
            await run.until(lambda: len(run.batches) >= 1)
            server.faults.fail_403 = 1
            await server.wait_for(lambda: len(server.calls(START)) == 2 and len(server.calls(MARKETS, 200)) >= 3)
    refused = next(r for r in server.requests if r["status"] == 403)
    start = server.calls(START)[1]
    assert start["at"] - refused["at"] >= 0.4 and start["userAgent"] == "UA-two"
    assert feed.stats["http_403"] == 1


async def test_5xx_backs_off_doubling_without_a_new_session(tmp_path: Path) -> None:
    async with serving(DATA) as server:
        feed = OlympusFeed(make_config(server, events=[{"pd": E1}], racing=[], backoff_initial_seconds=0.3),
                           ReplayClock(T0), state_dir=tmp_path)
        async with running(feed) as run:
            await run.until(lambda: len(run.batches) >= 1)
            server.faults.fail_5xx = 2
            await server.wait_for(lambda: sum(r["status"] == 503 for r in server.requests) == 2)
            first = next(i for i, r in enumerate(server.requests) if r["status"] == 503)
            await server.wait_for(lambda: len(server.requests) > first + 2)
    a, b, c = server.requests[first:first + 3]
    assert b["status"] == 503 and c["status"] == 200
    assert b["at"] - a["at"] >= 0.3 and c["at"] - b["at"] >= 0.6  # 0.3, then doubled
    assert len(server.calls(START)) == 1 and feed.stats["http_5xx"] == 2


async def test_a_malformed_record_is_dropped_and_counted_while_the_rest_of_the_board_arrives(
    tmp_path: Path, warnings: list[str],
) -> None:
    async with serving(DATA) as server:
        server.faults.malformed = 1  # the first markets response: E1's first price unreadable
        feed = OlympusFeed(make_config(server), ReplayClock(T0), state_dir=tmp_path)
        async with running(feed) as run:
            await run.until(lambda: len(run.batches) >= 1)
    batch = run.batches[0]
    q = quotes(batch)
    assert ("Philadelphia Eagles", "moneyline/game", "away") not in q  # the Lions' 5/6 was the bad one
    assert q[("Philadelphia Eagles", "moneyline/game", "home")] == pytest.approx(1 + 10 / 11)
    assert len(q) == 27 - 1
    assert feed.stats["bad_record"] == 1 and feed.stats.bad_total == 1
    assert [f.home for f, _ in batch.unconfirmed] == ["Philadelphia Eagles"]
    assert any("bad_record" in w and "seven/fifths" in w for w in warnings)  # logged with the record


async def test_keepalive_is_sent_on_time_on_the_engine_clock(tmp_path: Path) -> None:
    async with serving(DATA) as server:
        clock = ReplayClock(T0)
        feed = OlympusFeed(make_config(server, events=[{"pd": E1}], racing=[]), clock, state_dir=tmp_path)
        async with running(feed) as run:
            await run.until(lambda: len(run.batches) >= 1)
            assert feed.next_keepalive == T0 + timedelta(minutes=10)
            clock.advance(T0 + timedelta(minutes=9, seconds=59))
            seen = len(run.batches)
            await run.until(lambda: len(run.batches) >= seen + 2)  # polls go on on wall time ...
            assert server.calls("/session/keepalive") == []  # ... and no keep-alive is due yet
            clock.advance(T0 + timedelta(minutes=10))
            await server.wait_for(lambda: len(server.calls("/session/keepalive")) == 1)
            await eventually(lambda: feed.next_keepalive == T0 + timedelta(minutes=20))
            clock.advance(T0 + timedelta(minutes=19, seconds=59))
            seen = len(run.batches)
            await run.until(lambda: len(run.batches) >= seen + 2)
            assert len(server.calls("/session/keepalive")) == 1
            clock.advance(T0 + timedelta(minutes=20))
            await server.wait_for(lambda: len(server.calls("/session/keepalive")) == 2)
            await eventually(lambda: feed.next_keepalive == T0 + timedelta(minutes=30))
    sid = server.calls(START)[0]
    kept = server.calls("/session/keepalive")
    assert all(k["status"] == 200 and k["sessionId"] in server.sessions for k in kept)
    assert sid["status"] == 200 and feed.sessions["keepalives"] == 2


async def test_slow_responses_time_out_back_off_and_polling_resumes(tmp_path: Path) -> None:
    async with serving(DATA) as server:
        feed = OlympusFeed(make_config(server, events=[{"pd": E1}], racing=[], timeout_seconds=0.3),
                           ReplayClock(T0), state_dir=tmp_path)
        async with running(feed) as run:
            await run.until(lambda: len(run.batches) >= 1)
            server.faults.delay_seconds = 1.0
            await run.until(lambda: feed.stats["timeout"] >= 1)
            server.faults.delay_seconds = 0.0
            seen = len(run.batches)
            await run.until(lambda: len(run.batches) >= seen + 2 and not run.batches[-1].unconfirmed)
    assert feed.stats["timeout"] >= 1


async def test_login_and_account_info(tmp_path: Path) -> None:
    async with serving(DATA, username="myuser123", password="mypassword!") as server:
        feed = OlympusFeed(make_config(server, events=[{"pd": E1}], racing=[], username="myuser123",
                                       password="mypassword!"), ReplayClock(T0), state_dir=tmp_path)
        async with running(feed) as run:
            await run.until(lambda: len(run.batches) >= 1)
            info = await feed.account_info()
    assert feed.sessions["logins"] == 1
    assert info is not None and info.balance == Decimal("120.5") and info.currency == "GBP"
    assert info.bets[0]["betId"] == "B1234567890" and "120.5 GBP" in info.lines()[0]
    # read at login and kept under the state dir for `bot report`
    kept = saved_account(tmp_path)
    assert kept is not None and kept[0] == info and kept[1] == T0.isoformat()


def test_bot_report_shows_the_bet365_account_the_feed_kept(tmp_path: Path) -> None:
    """`bot report` with an Olympus feed prints the account the feed last read (no request)."""
    import subprocess
    import sys

    from bot.ledger.store import Ledger

    state = tmp_path / "state"
    Ledger(state / "bot.db").close()
    (state / ACCOUNT_FILE).write_text(json.dumps({"balance": "120.5", "currency": "GBP", "at": T0.isoformat(),
                                                 "bets": [{"betId": "B1", "stake": 5, "returns": 0, "status": "open"}]}))
    (tmp_path / "config.yaml").write_text(json.dumps({
        "state_dir": "state", "feeds": {"olympus": {"base_url": "http://127.0.0.1:9", "events": [{"pd": E1}]}}}))
    done = subprocess.run([sys.executable, "-m", "bot", "report", "-c", str(tmp_path / "config.yaml")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-1500:]
    assert "Bet365 balance: 120.5 GBP" in done.stdout and "B1: stake 5" in done.stdout
    as_json = subprocess.run([sys.executable, "-m", "bot", "report", "--json", "-c", str(tmp_path / "config.yaml")],
                             capture_output=True, text=True, cwd=tmp_path, timeout=60, check=True)
    assert json.loads(as_json.stdout)["bet365_account"]["balance"] == "120.5"


def test_config_errors_are_one_line_naming_the_field() -> None:
    from bot.config.settings import ConfigError, load_settings

    with pytest.raises(ConfigError, match=r"feeds\.olympus: .*nothing to poll"):
        load_settings(None, feeds={"olympus": {"base_url": "http://127.0.0.1:1"}})
    with pytest.raises(ConfigError, match=r"feeds\.olympus: .*username and password go together"):
        load_settings(None, feeds={"olympus": {"base_url": "http://x", "events": [{"pd": "#A#"}], "username": "u"}})
    with pytest.raises(ConfigError, match=r"feeds\.olympus\.events\.0\.pd"):
        load_settings(None, feeds={"olympus": {"base_url": "http://x", "events": [{"pd": ""}]}})
