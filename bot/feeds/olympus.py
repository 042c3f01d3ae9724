"""The Olympus (Bet365) polled odds feed (Olympus docs; docs/reference/olympus.md).

Session lifecycle (Olympus docs, "Session Management", "Authentication & Account Actions";
docs/reference/olympus.md §1):
- `POST /session/start` with `userAgent`, `bootstrap`, `proxyUrl`, `country_code`, `bet365_url`
  (and `sst` + `sessionId` to resume). The `sessionId` and `sst` are kept as `SecretStr`,
  registered with the masker (bot/config/secrets.py) and persisted, with the indices of the user
  agent and proxy the session is tied to, in `<state_dir>/olympus_session.json` (mode 0600), so a
  restart resumes the session with its `sst`.
- optional `POST /session/login` (credentials are secrets); `GET /account/info` is `account_info`.
- `GET /session/info` and `GET /session/status` after a session starts, and `/session/status`
  again before a poll once the last `expiresIn` is nearly spent ("call before placing bets or
  heavy extraction"); an inactive session is replaced.
- `POST /session/keepalive` every `keepalive_seconds` (default 600, "every ~10 minutes") on the
  ENGINE clock (bot.clock.Clock; docs/architecture.md, Invariants > Two clocks), independent of
  the poll schedule; a keep-alive that finds the session dead renews it without moving the schedule.

Polling: every `poll_seconds` (start to start, so a slow or failed poll never shifts the schedule)
`POST /matchmarkets/markets` and (per event, `props: true`) `POST /props` for each configured
event `pd`, the events of configured competitions (`GET /splashcontent/competitions_from_session`,
their `EV` records' `TB` event pd) and race coupons (`GET /racing/racecoupon`). The records are
decoded by bot/feeds/olympus_decode.py and the poll's whole board is emitted as ONE complete
`OddsBatch` (docs/architecture.md, Pipeline). Every request waits for the request budget
(`requests_per_minute`, aiolimiter) and for any backoff in force.

Errors (Olympus docs, "Error Handling & Debugging", "Automation, Anti-Bot & Troubleshooting";
docs/reference/olympus.md §2):
- 401 (invalid session): a new session (resuming with the `sst`; without it when the `sst` is
  refused too), then the request is retried ONCE;
- 403 / 429: backoff (doubling from `backoff_initial_seconds`, at least any `Retry-After`), then a
  new session on the next user agent and proxy of the configured lists ("Handle 403/429 with
  backoff and rotation"; sessions are tied to the user agent and proxy they were created with);
- 5xx, timeouts and connection errors: backoff;
- every error is logged with the response's request id (`request_id_header`) and its body,
  truncated and with secrets masked, and counted in `stats`.
An event whose request fails keeps its previous prices, unconfirmed; the poll goes on.

Bet placement through Olympus is NOT built: `POST /bet/place` has no documented request or
response body, and its only duplicate protection is a `safe_retry` field "in error responses"
whose type and meaning are not documented. There is no idempotency key the bot could commit
before the request leaves, so exactly-once placement (docs/architecture.md, Invariants >
Exactly-once placement) cannot be kept: a timeout would leave a bet that can be neither looked up
nor safely retried (docs/reference/olympus.md §7). Olympus is an odds source; orders go to ABP
(or the paper venue).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import httpx
from aiolimiter import AsyncLimiter
from loguru import logger
from pydantic import SecretStr

from bot.clock import Clock
from bot.config.secrets import mask_text, register
from bot.feeds.base import EmitFn, FeedStats, truncate
from bot.feeds.config import OlympusConfig, OlympusEventConfig
from bot.feeds.olympus_decode import SOURCE, EventBoard, MalformedResponse, OlympusBoard, decode, parse_records
from bot.types import FeedStatus

STATE_FILE = "olympus_session.json"
ACCOUNT_FILE = "olympus_account.json"
"""Under the state dir: the last `GET /account/info` (balance, recent bets), which `bot report` shows."""
STATUS_MARGIN = 2.0  # check /session/status when expiresIn has less than this many polls left


class SessionUnavailable(Exception):
    """No session could be started; the poll is skipped (counted, logged)."""


@dataclass
class AccountInfo:
    """`GET /account/info` (docs/reference/olympus.md §1): balance and recent bets."""

    balance: Decimal
    currency: str
    bets: list[dict[str, Any]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A few lines for a report: the balance, then one line per recent bet."""
        out = [f"Bet365 balance: {self.balance} {self.currency}"]
        for bet in self.bets:
            out.append(f"  {bet.get('betId', '?')}: stake {bet.get('stake')} returns {bet.get('returns')} "
                       f"{bet.get('status', '?')} at {bet.get('placedAt', '?')}")
        return out


def saved_account(state_dir: Path) -> tuple[AccountInfo, str] | None:
    """The account info the feed last kept under `state_dir` and when (ISO time of the engine
    clock), or None when there is none or it is unreadable."""
    path = state_dir / ACCOUNT_FILE
    try:
        data = json.loads(path.read_text())
        return parse_account_info(data), str(data.get("at", "?"))
    except (OSError, ValueError):
        return None


def parse_account_info(body: object) -> AccountInfo:
    """Raises ValueError when the body is not the documented shape."""
    if not isinstance(body, dict):
        raise ValueError("account info must be an object")  # noqa: TRY004 - callers catch bad bodies as ValueError
    try:
        balance = Decimal(str(body["balance"]))
    except (KeyError, InvalidOperation) as exc:
        raise ValueError(f"account info balance unreadable: {exc!r}") from None
    if not balance.is_finite():
        raise ValueError("account info balance must be finite")
    bets = [b for b in body.get("bets") or [] if isinstance(b, dict)]
    return AccountInfo(balance, str(body.get("currency") or ""), bets)


@dataclass
class _Session:
    session_id: SecretStr
    sst: SecretStr | None
    generation: int


class OlympusFeed:
    """Polls Olympus until cancelled; see the module docstring. `stats` counts polls, boards,
    updates and every kind of error; `sessions` counts requests, session starts, resumes, rotations,
    logins and keep-alives."""

    name = SOURCE

    def __init__(self, config: OlympusConfig, clock: Clock, *, state_dir: Path | None = None,
                 client: httpx.AsyncClient | None = None, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self._transport = transport  # None: direct; else e.g. the Scraping API relay (bot/feeds/scraping.py)
        self.clock = clock
        self.stats = FeedStats(SOURCE)
        self.sessions: Counter[str] = Counter()
        self._state_path = state_dir / STATE_FILE if state_dir is not None else None
        self._client = client
        self._limiter = AsyncLimiter(config.requests_per_minute, 60)
        self._board = OlympusBoard(config.bookmaker)
        self._session: _Session | None = None
        self._generation = 0
        self._session_lock = asyncio.Lock()
        self._ua_index = 0
        self._proxy_index = 0
        self._delay = 0.0  # current backoff, seconds
        self._not_before = 0.0  # loop time before which no request leaves
        self._expires_at: float | None = None  # loop time the session would expire, from expiresIn
        self.next_keepalive: datetime | None = None  # engine clock
        self.account: AccountInfo | None = None
        self._load_state()

    # -- state ---------------------------------------------------------------------------------

    def _load_state(self) -> None:
        if self._state_path is None or not self._state_path.is_file():
            return
        try:
            data = json.loads(self._state_path.read_text())
            sst, sid = data.get("sst"), data.get("sessionId")
            self._ua_index, self._proxy_index = int(data.get("userAgentIndex", 0)), int(data.get("proxyIndex", 0))
        except (OSError, ValueError, AttributeError) as exc:
            logger.warning("olympus: {} unreadable ({}); starting a new session", self._state_path, type(exc).__name__)
            return
        if isinstance(sst, str) and sst and isinstance(sid, str) and sid:
            register([sst, sid])
            self._session = _Session(SecretStr(sid), SecretStr(sst), 0)
            self._resume_pending = True

    def _save_state(self) -> None:
        if self._state_path is None or self._session is None:
            return
        data = {"sessionId": self._session.session_id.get_secret_value(),
                "sst": self._session.sst.get_secret_value() if self._session.sst else None,
                "userAgentIndex": self._ua_index, "proxyIndex": self._proxy_index}
        try:
            self._state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._state_path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh)
            os.replace(tmp, self._state_path)
        except OSError as exc:
            logger.warning("olympus: cannot persist the session to {}: {}", self._state_path, exc)

    # -- running -------------------------------------------------------------------------------

    _resume_pending = False  # a persisted session not yet confirmed by this process

    async def run(self, emit: EmitFn) -> None:
        """Poll until cancelled (see the module docstring)."""
        if self._client is None or self._client.is_closed:
            self._client = httpx.AsyncClient(timeout=self.config.timeout_seconds, transport=self._transport)
        keepalive = asyncio.create_task(self._keepalive_loop(), name="olympus-keepalive")
        loop = asyncio.get_running_loop()
        try:
            while True:
                started = loop.time()
                await self.poll_once(emit)
                await asyncio.sleep(max(0.0, self.config.poll_seconds - (loop.time() - started)))
        finally:
            keepalive.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keepalive
            await self._client.aclose()

    async def poll_once(self, emit: EmitFn) -> None:
        """One poll: every event and coupon, then ONE OddsBatch of the whole board."""
        self.stats["polls"] += 1
        try:
            await self._ready()
        except SessionUnavailable as exc:
            self.stats["no_session"] += 1
            logger.warning("olympus: poll skipped: {}", exc)
            await emit(FeedStatus(SOURCE, self.clock.now(), connected=False, stale=False, detail=str(exc)[:120]))
            return
        boards: list[EventBoard] = []
        failed: set[str] = set()
        events = list(self.config.events)
        events += [OlympusEventConfig(pd=pd) for pd in await self._competition_events()
                   if all(pd != e.pd for e in events)]
        for event in events[: self.config.max_events]:
            read = await self._read("POST", "/matchmarkets/markets", event.pd, {"pd": event.pd}, event)
            if read is None:
                failed.add(event.pd)
                continue
            if event.props:
                props = await self._read("POST", "/props", event.pd, {"pd": event.pd}, event)
                if props is None:
                    read[0].partial = True
                else:
                    for board in props:
                        if board.fixture == read[0].fixture:
                            read[0].quotes.update(board.quotes)
                            read[0].partial |= board.partial
            boards.extend(read)
        for pd in self.config.racing:
            read = await self._read("GET", "/racing/racecoupon", pd, {"pd": pd}, None)
            if read is None:
                failed.add(pd)
            else:
                boards.extend(read)
        batch = self._board.batch(boards, failed, self.clock.now())
        self.stats["boards"] += 1
        self.stats["updates"] += len(batch.updates)
        await emit(batch)

    async def _read(self, method: str, path: str, key: str, args: dict[str, str],
                    event: OlympusEventConfig | None) -> list[EventBoard] | None:
        """One event's (or coupon's) boards; None when the request failed or the body is unreadable."""
        response = await self._request(method, path, args)
        if response is None:
            return None
        try:
            items = parse_records(response.content)
            return decode(items, key, self.stats, sport=event.sport if event else None,
                          start_time=event.start_time if event else None)
        except MalformedResponse as exc:
            self.stats.bad("malformed_response", f"{path} {key}: {exc}", mask_text(response.text))
            return None

    async def _competition_events(self) -> list[str]:
        """Event pds listed by the configured competitions (the title crumb of each EV's TB)."""
        pds: list[str] = []
        for pd in self.config.competitions:
            response = await self._request("GET", "/splashcontent/competitions_from_session", {"pd": pd})
            if response is None:
                continue
            try:
                items = parse_records(response.content)
            except MalformedResponse as exc:
                self.stats.bad("malformed_response", f"competitions {pd}: {exc}", mask_text(response.text))
                continue
            for item in items:
                if isinstance(item, dict) and item.get("type") == "EV" and isinstance(item.get("TB"), str):
                    crumb = item["TB"].split("¬")[-1]
                    event_pd = crumb.rpartition(",")[2].strip()
                    if event_pd.startswith("#") and event_pd not in pds:
                        pds.append(event_pd)
        return pds

    # -- sessions ------------------------------------------------------------------------------

    async def _ready(self) -> None:
        """A live session, started (or resumed) and checked.

        Raises:
            SessionUnavailable: none could be started.
        """
        if self._session is None or self._resume_pending:
            await self._renew(self._session.generation if self._session else None, resume=True)
        loop = asyncio.get_running_loop()
        soon = self._expires_at is None or self._expires_at - loop.time() < STATUS_MARGIN * self.config.poll_seconds
        if soon and not await self._check_status():
            await self._renew(self._generation, resume=False)

    async def _check_status(self, *, renew: bool = True) -> bool:
        """`GET /session/status`: True when the session is active (and notes `expiresIn`)."""
        response = await self._request("GET", "/session/status", {}, renew=renew)
        if response is None:
            return self._session is not None
        try:
            body = response.json()
            active = body.get("active") is True
            expires = float(body.get("expiresIn"))
        except (ValueError, TypeError, AttributeError):
            self.stats.bad("malformed_response", "/session/status unreadable", mask_text(response.text))
            return True
        self._expires_at = asyncio.get_running_loop().time() + expires if active else None
        return active and expires > 0

    async def _renew(self, generation: int | None, *, resume: bool) -> None:
        """Replace the session of `generation` (no-op when another task already did).

        Raises:
            SessionUnavailable: no session could be started.
        """
        async with self._session_lock:
            if self._session is not None and not self._resume_pending and self._session.generation != generation:
                return  # renewed meanwhile
            previous = self._session
            self._resume_pending = False
            started = None
            if resume and previous is not None and previous.sst is not None:
                started = await self._start(previous)
            if started is None:
                started = await self._start(None)
            if started is None:
                self._session = None
                raise SessionUnavailable("POST /session/start failed")
            self._generation += 1
            self._session = _Session(started[0], started[1], self._generation)
            self._expires_at = None
            self._save_state()
            self.sessions["resumed" if started[2] else "started"] += 1
            logger.info("olympus: session {} ({} #{})", "resumed" if started[2] else "started",
                        "userAgent", self._ua_index)
        await self._after_start()

    async def _start(self, resume: _Session | None) -> tuple[SecretStr, SecretStr | None, bool] | None:
        c = self.config
        body: dict[str, Any] = {"bootstrap": c.bootstrap, "bet365_url": c.bet365_url}
        if c.user_agents:
            body["userAgent"] = c.user_agents[self._ua_index % len(c.user_agents)]
        if c.proxies:
            body["proxyUrl"] = c.proxies[self._proxy_index % len(c.proxies)].get_secret_value()
        if c.country_code:
            body["country_code"] = c.country_code
        if resume is not None and resume.sst is not None:
            body["sst"] = resume.sst.get_secret_value()
            body["sessionId"] = resume.session_id.get_secret_value()
        response = await self._request("POST", "/session/start", body, session=False)
        if response is None:
            return None
        try:
            data = response.json()
            sid, sst = data["sessionId"], data.get("sst")
            if not isinstance(sid, str) or not sid or (sst is not None and not isinstance(sst, str)):
                raise ValueError("sessionId must be a non-empty string, sst a string")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            self.stats.bad("malformed_response", f"/session/start: {exc}", mask_text(response.text))
            return None
        register([s for s in (sid, sst) if s])
        kept_sst = SecretStr(sst) if sst else (resume.sst if resume is not None else None)
        return SecretStr(sid), kept_sst, resume is not None

    async def _after_start(self) -> None:
        """Login (when configured), then `/session/info` and `/session/status`."""
        c = self.config
        if c.username is not None and c.password is not None:
            response = await self._request("POST", "/session/login", {
                "username": c.username.get_secret_value(), "password": c.password.get_secret_value()}, renew=False)
            if response is not None:
                self.sessions["logins"] += 1
                await self._refresh_account()
        info = await self._request("GET", "/session/info", {}, renew=False)
        if info is not None:
            with contextlib.suppress(ValueError):
                body = info.json()
                if isinstance(body, dict) and body.get("active") is False:
                    logger.warning("olympus: /session/info says the new session is not active")
        await self._check_status(renew=False)

    async def _rotate(self, generation: int) -> None:
        """Next user agent and proxy, and a new session on them (403/429)."""
        if self._session is None or self._session.generation != generation:
            return
        self._ua_index += 1
        self._proxy_index += 1
        self.sessions["rotations"] += 1
        with contextlib.suppress(SessionUnavailable):
            await self._renew(generation, resume=False)

    async def _keepalive_loop(self) -> None:
        every = timedelta(seconds=self.config.keepalive_seconds)
        self.next_keepalive = self.clock.now() + every
        while True:
            while self.clock.now() < self.next_keepalive:
                await asyncio.sleep(self.config.clock_check_seconds)
            try:
                if await self.keepalive() and self.config.username is not None:
                    await self._refresh_account()
            except Exception as exc:  # noqa: BLE001 - the schedule must survive any failure
                logger.warning("olympus: keep-alive failed: {}", truncate(mask_text(str(exc))))
            now = self.clock.now()
            self.next_keepalive += every
            while self.next_keepalive + every <= now:  # the clock jumped past several: one call for them
                self.next_keepalive += every

    async def keepalive(self) -> bool:
        """`POST /session/keepalive` (docs/reference/olympus.md §1)."""
        if self._session is None:
            return False
        response = await self._request("POST", "/session/keepalive", {})
        if response is None:
            return False
        self.sessions["keepalives"] += 1
        with contextlib.suppress(ValueError, AttributeError):
            body = response.json()
            if body.get("alive") is False:
                self.sessions["keepalive_dead"] += 1
                with contextlib.suppress(SessionUnavailable):
                    await self._renew(self._generation, resume=True)
                return False
        return True

    async def _refresh_account(self) -> None:
        """Read the account and keep it under the state dir for `bot report` (`ACCOUNT_FILE`)."""
        account = await self.account_info()
        if account is None or self._state_path is None:
            return
        data = {"balance": str(account.balance), "currency": account.currency, "bets": account.bets,
                "at": self.clock.now().isoformat()}
        path = self._state_path.with_name(ACCOUNT_FILE)
        try:
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, default=str))
            os.replace(tmp, path)
        except OSError as exc:
            logger.warning("olympus: cannot keep the account info in {}: {}", path, exc)

    async def account_info(self) -> AccountInfo | None:
        """`GET /account/info` (needs a login): balance and recent bets, also kept in `account`."""
        response = await self._request("GET", "/account/info", {})
        if response is None:
            return None
        try:
            self.account = parse_account_info(response.json())
        except ValueError as exc:
            self.stats.bad("malformed_response", f"/account/info: {exc}", mask_text(response.text))
            return None
        return self.account

    # -- requests ------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        c = self.config
        return {c.api_key_header: c.api_key.get_secret_value()} if c.api_key is not None else {}

    async def _gate(self) -> None:
        loop = asyncio.get_running_loop()
        while (wait := self._not_before - loop.time()) > 0:
            await asyncio.sleep(wait)
        await self._limiter.acquire()

    def _back_off(self, response: httpx.Response | None) -> float:
        c = self.config
        self._delay = min(max(self._delay * 2, c.backoff_initial_seconds), c.backoff_max_seconds)
        wait = self._delay
        if response is not None:
            with contextlib.suppress(TypeError, ValueError):
                retry_after = float(response.headers.get("retry-after"))
                if 0 <= retry_after <= c.backoff_max_seconds:
                    wait = max(wait, retry_after)
        self._not_before = asyncio.get_running_loop().time() + wait
        return wait

    async def _request(self, method: str, path: str, args: dict[str, Any], *,
                       session: bool = True, renew: bool = True) -> httpx.Response | None:
        """One API call with the documented error handling (module docstring); the 200 response,
        or None when it failed (logged, counted, backoff set). `renew=False` (the calls that follow
        a session start) neither renews nor rotates the session on 401/403/429, so a server that
        refuses everything cannot recurse."""
        assert self._client is not None
        url = f"{self.config.base_url.rstrip('/')}{path}"
        for attempt in (0, 1):
            current = self._session
            if session and current is None:
                return None
            payload = dict(args)
            if session and current is not None:
                payload["sessionId"] = current.session_id.get_secret_value()
            await self._gate()
            self.sessions["requests"] += 1
            try:
                if method == "GET":
                    response = await self._client.get(url, params=payload, headers=self._headers())
                else:
                    response = await self._client.post(url, json=payload, headers=self._headers())
            except httpx.TimeoutException:
                self.stats["timeout"] += 1
                wait = self._back_off(None)
                logger.warning("olympus: {} {} timed out; backing off {:.1f} s", method, path, wait)
                return None
            except httpx.HTTPError as exc:
                self.stats["http_error"] += 1
                wait = self._back_off(None)
                logger.warning("olympus: {} {} failed ({}); backing off {:.1f} s", method, path,
                               truncate(mask_text(f"{type(exc).__name__}: {exc}")), wait)
                return None
            status = response.status_code
            if status == 200:
                self._delay = 0.0
                return response
            self._log_error(method, path, response)
            generation = current.generation if current is not None else -1
            if status == 401 and session:
                self.stats["http_401"] += 1
                if attempt == 1 or not renew:
                    if self._session is current:  # the session is dead: the next poll starts with a new one
                        self._resume_pending = True
                    return None
                try:
                    await self._renew(generation, resume=True)
                except SessionUnavailable:
                    return None
                continue  # the one retry, on the new session
            if status in (403, 429):
                self.stats["rate_limited" if status == 429 else "http_403"] += 1
                self._back_off(response)
                if session and renew:
                    await self._rotate(generation)
                else:
                    self._ua_index += 1
                    self._proxy_index += 1
                return None
            if status >= 500:
                self.stats["http_5xx"] += 1
                self._back_off(response)
                return None
            self.stats[f"http_{status}"] += 1  # 400, 404, or 401 on a session start (sst refused)
            return None
        return None

    def _log_error(self, method: str, path: str, response: httpx.Response) -> None:
        request_id = response.headers.get(self.config.request_id_header) or "-"
        logger.warning("olympus: {} {} -> HTTP {} (request id {}): {}", method, path, response.status_code,
                       request_id, truncate(mask_text(response.text)))
