"""The OddsPapi v5 feed: a REST snapshot, then the WebSocket `odds` channel, in ABP's own ids
(docs/reference/oddspapi.md §5-§6; decoding in bot/feeds/oddspapi_decode.py).

One session follows the documented flow (docs/reference/oddspapi.md §6: "REST baseline
(`/fixtures`, `/fixtures/odds`) -> WS login -> persist `serverEpoch` and each channel's
`lastSeenId` -> on `snapshot_required` reload from REST"):
1. `GET /{lang}/markets?sportId=` for every sport not yet indexed (outcomeId -> market);
2. `GET /{lang}/fixtures` for the configured sports, tournaments and fixture ids, starting within
   `hours_ahead` (epoch seconds); finished and cancelled fixtures are left out;
3. `GET /{lang}/fixtures/odds?fixtureId=&bookmakers=` per fixture (at most 5 slugs a request, so
   more books are several requests), all emitted as ONE complete `OddsBatch`;
4. connect to `ws_url` and send `login` (apiKey, channels ["odds"], the filters, `receiveType:
   json`, and `serverEpoch` / `lastSeenId` of the previous connection when known), wait for
   `login_ok` within `login_timeout_seconds`; then every `odds` UPDATE frame is one incomplete
   `OddsBatch`. `snapshot_required` reloads step 1-3 on the same connection; `reconnect`, a close
   (4000 login timeout, 4001 revoked key, 4002 backpressure, 4003 too many connections), an `error`
   frame at login or a missing pong (`ping_interval_seconds`) ends the session.
A session that ends emits `FeedStatus(stale=True)` (the book stops trusting this feed's prices until
the next snapshot), waits a jittered exponential backoff (tenacity) and starts again from step 1:
every reconnect takes a fresh REST snapshot and logs in again with the same filters (filters are
fixed at login). A session that got data resets the backoff.

Rate limits (docs/reference/oddspapi.md §5), per key and endpoint, kept with aiolimiter: the odds
endpoints `odds_requests_per_second` (10/s), every other endpoint `requests_per_minute` (100/min).
A 429 waits `Retry-After` (or the body's `retryAfterSec`) and tries again (up to RETRIES_429
times); 401/403 end the session with the body's `code` (`invalid_api_key`, `bookmaker_not_allowed`,
...). The key travels as the `apiKey` query parameter (§5); it is masked in every log line
(bot/config/secrets.py).

Bad input never ends the feed (docs/architecture.md, "Invariants > Nothing lost, nothing silent"):
a frame that is not JSON ("malformed_json"), not an object or of an unknown type
("unknown_message") is logged truncated, counted in `stats` and dropped alone; a bad entry inside a
frame costs that entry (bot/feeds/oddspapi_decode.py).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import httpx
import orjson
from aiolimiter import AsyncLimiter
from loguru import logger
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake, WebSocketException

from bot.clock import Clock
from bot.feeds.base import EmitFn, FeedStats, loads_lenient, truncate
from bot.feeds.config import OddsPapiConfig
from bot.feeds.oddspapi_decode import SOURCE, OddsPapiDecoder
from bot.latency import frame_received
from bot.types import FeedStatus

BOOKS_PER_REQUEST = 5  # "At most 5 slugs per `bookmakers=`" (docs/reference/oddspapi.md §5)
FIXTURE_IDS_PER_REQUEST = 50
RETRIES_429 = 5
RETRY_AFTER_MAX = 60.0
ODDS_PATHS = frozenset({"/fixtures/odds", "/fixtures/odds/main", "/futures/odds"})


class SessionLost(Exception):
    """The connection ended, or the server refused or told us to reconnect (the feed reconnects)."""


class OddsPapiHttpError(SessionLost):
    """An HTTP answer other than 200 (after the 429 retries). `code` is the body's `code`."""

    def __init__(self, path: str, status: int, code: str, message: str) -> None:
        super().__init__(f"GET {path}: HTTP {status} {code}: {message}")
        self.status, self.code = status, code


class BadAnswer(Exception):
    """A 200 answer whose body is not the documented shape (that one request's data is dropped)."""


class _HealthyEnd(Exception):
    """A session that delivered data ended: reconnect with a fresh backoff."""


RECONNECT_ON = (OSError, asyncio.TimeoutError, WebSocketException, InvalidHandshake, SessionLost, httpx.HTTPError)


class OddsPapiRest:
    """GET on OddsPapi v5 within the documented rate limits (see the module docstring)."""

    def __init__(self, config: OddsPapiConfig, stats: FeedStats, client: httpx.AsyncClient | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.stats = stats
        self._transport = transport  # None: direct; else e.g. the Scraping API relay (bot/feeds/scraping.py)
        self._client = client or httpx.AsyncClient(timeout=config.timeout_seconds, transport=transport)
        self._odds_limit = AsyncLimiter(config.odds_requests_per_second, 1.0)
        self._other_limit = AsyncLimiter(config.requests_per_minute, 60.0)

    async def aclose(self) -> None:
        await self._client.aclose()

    def reopen(self) -> None:
        if self._client.is_closed:
            self._client = httpx.AsyncClient(timeout=self.config.timeout_seconds, transport=self._transport)

    async def get(self, path: str, params: dict[str, str | int]) -> Any:
        """The JSON body of `GET {base_url}/{lang}{path}`. Raises OddsPapiHttpError (any status
        but 200, after waiting out up to RETRIES_429 rate limits), httpx.HTTPError, ValueError
        (a body that is not JSON)."""
        url = f"{self.config.base_url.rstrip('/')}/{self.config.lang}{path}"
        query = {**params, "apiKey": self.config.api_key.get_secret_value()}
        limiter = self._odds_limit if path in ODDS_PATHS else self._other_limit
        for attempt in range(RETRIES_429 + 1):
            async with limiter:
                response = await self._client.get(url, params=query)
            if response.status_code == 200:
                return loads_lenient(response.content)
            code, message, retry = _error_body(response)
            if response.status_code == 429 and attempt < RETRIES_429:
                self.stats["rate_limited"] += 1
                logger.warning("oddspapi: GET {} rate limited ({}); waiting {:.1f} s", path, code, retry)
                await asyncio.sleep(retry)
                continue
            raise OddsPapiHttpError(path, response.status_code, code, message)
        raise AssertionError("unreachable")  # pragma: no cover


def _error_body(response: httpx.Response) -> tuple[str, str, float]:
    """(code, message, seconds to wait) of an OddsPapi error answer (docs/reference/oddspapi.md §5:
    `{error, message, code (or reason), details?}`, 429 adds `retryAfterSec` and `Retry-After`)."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("code") or body.get("reason") or "unknown")
    message = truncate(str(body.get("message") or response.text), 200)
    retry: float = 1.0
    for raw in (response.headers.get("retry-after"), body.get("retryAfterSec")):
        try:
            value = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if 0 <= value <= RETRY_AFTER_MAX:
            retry = value
            break
    return code, message, retry


class OddsPapiFeed:
    """OddsPapi v5 (REST snapshot + WebSocket `odds`); see the module docstring. `stats` counts
    frames, updates, snapshots, logins, reconnects and bad input; `logins` counts login messages
    sent."""

    name = SOURCE

    def __init__(self, config: OddsPapiConfig, clock: Clock, client: httpx.AsyncClient | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.clock = clock
        self.stats = FeedStats(SOURCE)
        self.decoder = OddsPapiDecoder(self.stats, p1_away_sports=config.participant1_away_sports,
                                       p1_away_tournaments=config.participant1_away_tournaments)
        self.rest = OddsPapiRest(config, self.stats, client, transport)
        self.logins = 0
        self._server_epoch: str | None = None
        self._last_seen: str | None = None  # entryId of the last odds frame
        self._failed_fixtures: set[str] = set()

    async def run(self, emit: EmitFn) -> None:
        """Stream until cancelled, reconnecting forever (again after an earlier run ended)."""
        self.rest.reopen()
        try:
            while True:
                try:
                    async for attempt in self._retrying():
                        with attempt:
                            await self._session(emit)
                except _HealthyEnd:
                    # Jitter so a fleet of bots does not reconnect in the same instant.
                    await asyncio.sleep(random.uniform(0, self.config.reconnect_initial_seconds))
        finally:
            await self.rest.aclose()

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(
            wait=wait_random_exponential(multiplier=self.config.reconnect_initial_seconds,
                                         max=self.config.reconnect_max_seconds),
            retry=retry_if_exception_type(RECONNECT_ON),
            before_sleep=self._log_retry,
            reraise=True,
        )

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        logger.warning("oddspapi: session failed ({}); retry {} in {:.1f} s", truncate(exc), state.attempt_number, wait)

    # -- REST ----------------------------------------------------------------------------------

    async def snapshot(self, emit: EmitFn) -> None:
        """Steps 1-3 of the module docstring: one complete OddsBatch."""
        c = self.config
        for sport_id in c.sport_ids:
            await self._markets(sport_id)
        rows = await self._fixture_rows()
        for row in rows:
            self.decoder.load_fixture(row)
        followed = [f for f in dict.fromkeys(_ids(rows)) if f in self.decoder.fixtures
                    and not self.decoder.fixtures[f].finished]
        for sport_id in {self.decoder.fixtures[f].sport_id for f in followed}:
            await self._markets(sport_id)
        answers: list[object] = []
        unreadable: list[str] = []
        for fixture_id in followed:
            try:
                answers.append(await self._fixture_odds(fixture_id))
            except (OddsPapiHttpError, BadAnswer, ValueError) as exc:
                if isinstance(exc, OddsPapiHttpError) and exc.status in (401, 403):
                    raise
                self.stats.bad("http_error", f"odds of {fixture_id}", exc)
                unreadable.append(fixture_id)
        received = self.clock.now()
        self.stats["snapshots"] += 1
        batch = self.decoder.snapshot(answers, unreadable, received)
        self.stats["updates"] += len(batch.updates)
        logger.info("oddspapi: snapshot of {} fixtures, {} quotes ({} unreadable)", len(followed),
                    len(batch.updates), len(unreadable))
        await emit(batch)

    async def _markets(self, sport_id: int) -> None:
        if sport_id in self.decoder.sports_loaded:
            return
        rows = await self.rest.get("/markets", {"sportId": sport_id})
        count = self.decoder.load_markets(rows, sport_id)
        logger.info("oddspapi: market catalogue of sport {}: {} outcomes", sport_id, count)

    async def _fixture_rows(self) -> list[object]:
        c = self.config
        now = self.clock.now()
        window = {"startTimeFrom": int((now - timedelta(hours=6)).timestamp()),
                  "startTimeTo": int((now + timedelta(hours=c.hours_ahead)).timestamp())}
        queries: list[dict[str, str | int]] = [{"sportId": s, **window} for s in c.sport_ids]
        queries += [{"tournamentId": t, **window} for t in c.tournament_ids]
        for i in range(0, len(c.fixture_ids), FIXTURE_IDS_PER_REQUEST):
            queries.append({"fixtureIds": ",".join(c.fixture_ids[i:i + FIXTURE_IDS_PER_REQUEST])})
        rows: list[object] = []
        for query in queries:
            answer = await self.rest.get("/fixtures", query)
            if not isinstance(answer, list):
                raise SessionLost(f"/fixtures answered {truncate(answer, 120)}, not a list")
            rows.extend(answer)
        return rows

    async def _fixture_odds(self, fixture_id: str) -> dict[str, Any]:
        """`/fixtures/odds` of one fixture, the answers of each group of 5 books merged."""
        merged: dict[str, Any] = {}
        books = self.config.bookmakers
        for i in range(0, len(books), BOOKS_PER_REQUEST):
            answer = await self.rest.get("/fixtures/odds", {"fixtureId": fixture_id,
                                                            "bookmakers": ",".join(books[i:i + BOOKS_PER_REQUEST])})
            if not isinstance(answer, dict):
                raise BadAnswer(f"/fixtures/odds answered {truncate(answer, 120)}, not an object")
            odds, meta = merged.get("odds", {}), merged.get("bookmakers", {})
            merged.update(answer)
            if isinstance(answer.get("odds"), dict) and isinstance(odds, dict):
                merged["odds"] = {**odds, **answer["odds"]}
            if isinstance(answer.get("bookmakers"), dict) and isinstance(meta, dict):
                merged["bookmakers"] = {**meta, **answer["bookmakers"]}
        return merged

    async def _fetch_fixture(self, fixture_id: str) -> None:
        """A fixture an odds frame names that the snapshot did not list: looked up once."""
        if fixture_id in self._failed_fixtures:
            return
        try:
            rows = await self.rest.get("/fixtures", {"fixtureIds": fixture_id})
        except (OddsPapiHttpError, httpx.HTTPError, ValueError) as exc:
            logger.warning("oddspapi: fixture {} could not be looked up: {}", fixture_id, truncate(exc))
            rows = []
        found = [r for r in rows if isinstance(r, dict) and r.get("fixtureId") == fixture_id] \
            if isinstance(rows, list) else []
        if not found or self.decoder.load_fixture(found[0]) is None:
            self._failed_fixtures.add(fixture_id)
            return
        await self._markets(self.decoder.fixtures[fixture_id].sport_id)

    # -- WebSocket -----------------------------------------------------------------------------

    def login_message(self) -> dict[str, Any]:
        """The `login` frame (docs/reference/oddspapi.md §6); empty filters are left out."""
        c = self.config
        msg: dict[str, Any] = {"type": "login", "apiKey": c.api_key.get_secret_value(), "channels": ["odds"],
                               "bookmakers": list(c.bookmakers), "lang": c.lang, "receiveType": "json"}
        for name, values in (("sportIds", c.sport_ids), ("tournamentIds", c.tournament_ids),
                             ("fixtureIds", c.fixture_ids)):
            if values:
                msg[name] = list(values)
        if self._server_epoch is not None and self._last_seen is not None:
            msg["serverEpoch"] = self._server_epoch
            msg["lastSeenId"] = {"odds": self._last_seen}
        return msg

    async def _session(self, emit: EmitFn) -> None:
        got_data = False
        try:
            await self.snapshot(emit)
            async with connect(self.config.ws_url, max_size=self.config.max_frame_bytes,
                               open_timeout=self.config.login_timeout_seconds,
                               ping_interval=self.config.ping_interval_seconds,
                               ping_timeout=self.config.ping_interval_seconds) as ws:
                await self._login(ws)
                got_data = True
                async for frame in ws:
                    frame_received()  # the tick-to-order stamp (bot/latency.py)
                    await self._frame(frame, emit)
                raise SessionLost(f"closed by the server ({ws.close_code} {ws.close_reason})")
        except RECONNECT_ON as exc:
            self.stats["reconnects"] += 1
            now = self.clock.now()
            logger.warning("oddspapi: session lost ({}); prices stale until the next snapshot", truncate(exc))
            await emit(FeedStatus(SOURCE, now, connected=False, stale=True, detail=truncate(exc, 120)))
            if got_data:
                raise _HealthyEnd from exc
            raise

    async def _login(self, ws: ClientConnection) -> None:
        await ws.send(orjson.dumps(self.login_message()).decode())
        self.logins += 1
        self.stats["logins"] += 1
        try:
            async with asyncio.timeout(self.config.login_timeout_seconds):
                raw = await ws.recv()
        except TimeoutError:
            raise SessionLost(f"no login_ok within {self.config.login_timeout_seconds:g} s") from None
        try:
            reply = loads_lenient(raw)
        except ValueError:
            raise SessionLost(f"unreadable login answer: {truncate(raw)}") from None
        if not isinstance(reply, dict) or reply.get("type") != "login_ok":
            raise SessionLost(f"login refused: {truncate(reply)}")
        resume = reply.get("resume")
        if isinstance(resume, dict) and isinstance(resume.get("serverEpoch"), str | int):
            epoch = str(resume["serverEpoch"])
            if epoch != self._server_epoch:
                self._last_seen = None  # entry ids of another server epoch mean nothing here
            self._server_epoch = epoch
        logger.info("oddspapi: logged in ({} bookmakers, access {})", len(self.config.bookmakers),
                    truncate(reply.get("access"), 80))

    async def _frame(self, frame: str | bytes, emit: EmitFn) -> None:
        """One WebSocket frame; bad input is counted and dropped alone."""
        self.stats["frames"] += 1
        try:
            msg = loads_lenient(frame)
        except ValueError:
            self.stats.bad("malformed_json", "frame is not JSON", frame, sparse=True)
            return
        if not isinstance(msg, dict):
            self.stats.bad("unknown_message", "frame is not an object", frame, sparse=True)
            return
        kind, channel = msg.get("type"), msg.get("channel")
        if channel == "odds" and kind == "UPDATE":
            await self._odds(msg, emit)
        elif kind == "snapshot_required":
            self.stats["snapshot_required"] += 1
            logger.info("oddspapi: server asks for a snapshot")
            self._last_seen = None
            await self.snapshot(emit)
        elif kind == "reconnect":
            raise SessionLost("server asked to reconnect")
        elif kind == "resume_complete":
            self.stats["resumes"] += 1
        elif kind == "error":
            self.stats.bad("server_error", "error frame", frame)
        else:
            self.stats.bad("unknown_message", f"type {truncate(kind, 40)} on channel {truncate(channel, 40)}",
                           frame, sparse=True)

    async def _odds(self, msg: dict[str, Any], emit: EmitFn) -> None:
        payload = msg.get("payload")
        unknown = self.decoder.payload_fixture(payload)
        if unknown is not None:
            await self._fetch_fixture(unknown)
        try:
            batch = self.decoder.frame_odds(payload, self.clock.now())
        except Exception as exc:  # noqa: BLE001 - a decoder bug costs this frame only
            self.stats["decoder_error"] += 1
            logger.opt(exception=exc).error("oddspapi: frame could not be decoded ({}); frame: {}",
                                            truncate(exc), truncate(msg))
            return
        entry_id = msg.get("entryId")
        if isinstance(entry_id, str):
            self._last_seen = entry_id
        self.stats["messages"] += 1
        if batch is not None:
            self.stats["updates"] += len(batch.updates)
            await emit(batch)


def _ids(rows: Sequence[object]) -> list[str]:
    return [r["fixtureId"] for r in rows if isinstance(r, dict) and isinstance(r.get("fixtureId"), str)]
