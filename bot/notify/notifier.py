"""Operator notifications through apprise (Telegram, Discord, Slack, e-mail, JSON webhooks ...).

`Notifier.send(kind, message)` is called on the trading loop's hot path, so it never blocks and
never raises: it applies the kind's switch and rate limit and queues. A background task (`start`)
delivers the queue in order, one message at a time, with apprise's blocking `notify` in a worker
thread (`asyncio.to_thread`): apprise's `async_notify` runs plugins that are not in async mode
inline on the loop, a thread never blocks it. Each delivery is bounded by
`notify.timeout_seconds`; a failed one is logged (without the URL: it holds a token), counted and
not retried. `stop()` drains what is queued within the same timeout.

Secrets never leave (docs/architecture.md, "Invariants > Secrets never leave"): the URLs' tokens
are registered with bot.config.secrets at construction, and every title and body is masked with
`secrets.mask_text` just before apprise sees it.

Rate limit, per kind: a message within `min_interval_seconds` of the last one of its kind that
went out is not sent but folded; the next one of that kind carries "(+N more ...)", and `stop()`
sends what is still folded as one last message, so nothing is lost silently.

`stats` (counts by outcome, then by kind):
    {"sent": {"halt": 2}, "failed": {"breaker_open": 1}, "folded": {"halt": 1}, "dropped": {},
     "disabled": {"daily_pnl": 1}, "no_target": {}}
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from loguru import logger

from bot.config import secrets
from bot.notify import events
from bot.notify.config import NotifyConfig
from bot.notify.events import DeclineBurst, Kind, Message

if TYPE_CHECKING:
    import apprise

QUEUE_LIMIT = 1000  # messages waiting for delivery; beyond it a message is dropped and counted
MIN_SECRET_LEN = 6  # shorter URL parts are not registered: masking "abc" everywhere would garble text
OUTCOMES = ("sent", "failed", "folded", "dropped", "disabled", "no_target")
_CREDENTIAL_NAME = re.compile(r"(?i)key|token|secret|pass|auth|sig|webhook")


STOP_SLACK_SECONDS = 1.0  # stop waits this beyond a delivery's timeout, so that delivery ends on its own


@dataclass(slots=True)
class _Fold:
    """Messages of one kind held back by the rate limit since the last one that went out."""

    count: int
    first: float  # monotonic time of the first folded message
    latest: Message


def url_problem(url: str) -> str | None:
    """Why apprise cannot use `url` (one line that never quotes the URL, only its scheme), or None."""
    import apprise

    if apprise.Apprise.instantiate(url) is not None:
        return None
    scheme, sep, _ = url.partition("://")
    shown = f"scheme {scheme + '://'!r}" if sep and scheme.isalnum() and len(scheme) <= 16 else "no scheme"
    return (f"apprise does not understand this URL ({shown}); formats: "
            "https://github.com/caronc/apprise/wiki (tgram://, discord://, slack://, mailto://, json://)")


def url_secrets(url: str, plugin: Any) -> list[str]:
    """The secret parts of an apprise URL: the URL itself, the tokens its plugin marks private
    (template tokens/args flagged `private`: bot tokens, webhook ids and tokens, passwords), and
    header and query values whose names look like credentials. Parts shorter than
    MIN_SECRET_LEN are left out (the whole URL still covers them)."""
    found = [url]
    try:
        parsed: dict[str, Any] = type(plugin).parse_url(url) or {}
    except Exception:  # noqa: BLE001 - a plugin's parser failing only means fewer parts registered
        parsed = {}
    private: set[str] = {"password"}
    for table in ("template_tokens", "template_args", "template_kwargs"):
        for name, spec in (getattr(plugin, table, None) or {}).items():
            if isinstance(spec, dict) and spec.get("private"):
                private.add(str(spec.get("map_to", name)))
    values: list[Any] = [parsed.get(name) for name in private]
    for table in ("headers", "params", "qsd"):
        mapping = parsed.get(table)
        if isinstance(mapping, dict):
            values += [v for k, v in mapping.items() if table == "headers" or _CREDENTIAL_NAME.search(str(k))]
    for value in values:
        items = value if isinstance(value, list | tuple | set) else [value]
        found += [v for v in items if isinstance(v, str) and len(v) >= MIN_SECRET_LEN]
    return found


class Notifier:
    """Sends operator notifications for one bot instance; titles read "[instance] ...".

    Args:
        config: the `notify:` section.
        instance: this bot's name, prefixed to every title.
        zone: IANA zone of the trading day (`risk.day_timezone`), for local times in messages.
        monotonic: seconds of a monotonic clock, for the per-kind rate limit (tests pass their own).

    Call `send` from the event loop's thread (another thread is tolerated); `start` and `stop`
    from the loop. With no URLs every call is counted and nothing else happens.
    """

    def __init__(self, config: NotifyConfig, *, instance: str, zone: str = "UTC",
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self.instance = instance
        self.zone = zone
        self._monotonic = monotonic
        self._counts: dict[str, Counter[str]] = {outcome: Counter() for outcome in OUTCOMES}
        self._last_out: dict[str, float] = {}  # kind -> monotonic time its last message went out
        self._folds: dict[str, _Fold] = {}
        self._queue: deque[tuple[str, Message]] = deque()
        self._lock = threading.Lock()  # send() may come from another thread (risk callbacks, CLI)
        self._burst = DeclineBurst(config.decline_burst, config.decline_window_seconds)
        self._burst_reasons: deque[tuple[datetime, str]] = deque(maxlen=config.decline_burst)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._targets = self._build_targets([u.get_secret_value() for u in config.urls])

    # -- public --------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """True when at least one URL was accepted (else `send` only counts)."""
        return self._targets is not None

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        """Counts by outcome, then by kind (a copy)."""
        with self._lock:
            return {outcome: dict(counts) for outcome, counts in self._counts.items()}

    @property
    def queued(self) -> int:
        return len(self._queue)

    def send(self, kind: Kind | str, message: Message) -> None:
        """Queue `message` as `kind`: switched-off kinds are counted `disabled`, a message within
        the kind's interval is `folded`. Never blocks, never raises."""
        try:
            self._send(str(Kind(kind)), message)
        except Exception:  # noqa: BLE001 - the trading loop must not fail on a notification
            logger.opt(exception=True).error("notify: could not queue a {} message", kind)

    def declined(self, at: datetime, reason: str = "") -> None:
        """One rejected signal (`reason`: its reason code); a burst of `decline_burst` within
        `decline_window_seconds` sends one decline_burst message. Never raises."""
        try:
            window = self._config.decline_window_seconds
            self._burst_reasons.append((at, reason))
            while self._burst_reasons and (at - self._burst_reasons[0][0]).total_seconds() >= window:
                self._burst_reasons.popleft()
            if self._burst.observe(at):
                reasons = Counter(r for _, r in self._burst_reasons if r)
                self.send(Kind.DECLINE_BURST, events.decline_burst(
                    self._burst.count, window, at=at, zone=self.zone, reasons=dict(reasons)))
        except Exception:  # noqa: BLE001 - as send()
            logger.opt(exception=True).error("notify: could not count a rejected signal")

    async def start(self) -> None:
        """Start the delivery task (messages queued before it are sent first)."""
        if self._task is not None or self._targets is None:
            return
        self._closing = False
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="notify")
        if self._queue:
            self._wake.set()

    async def stop(self) -> None:
        """Send what is still folded, drain the queue within `timeout_seconds` (plus
        STOP_SLACK_SECONDS), then stop; what
        is left undelivered is counted `dropped` and logged."""
        with self._lock:
            folds, self._folds = self._folds, {}
        for kind, fold in folds.items():
            self._enqueue(kind, Message(f"{fold.count} more {kind} message(s) held back",
                                        self._fold_note(kind, fold), fold.latest.severity))
        self._closing = True
        task, wake = self._task, self._wake
        if task is not None and wake is not None:
            wake.set()
            try:
                # a delivery in flight keeps its own full timeout: stop never cuts it short first
                await asyncio.wait_for(asyncio.shield(task), self._config.timeout_seconds + STOP_SLACK_SECONDS)
            except TimeoutError:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._task = None
        with self._lock:
            left = Counter(kind for kind, _ in self._queue)
            self._queue.clear()
            self._counts["dropped"].update(left)
        if left:
            logger.warning("notify: {} message(s) not delivered before stop ({})", left.total(),
                           ", ".join(f"{k} x{n}" for k, n in sorted(left.items())))

    # -- queueing --------------------------------------------------------------------------

    def _count(self, outcome: str, kind: str) -> None:
        with self._lock:
            self._counts[outcome][kind] += 1

    def _send(self, kind: str, message: Message) -> None:
        if not self._config.enabled(kind):
            self._count("disabled", kind)
            return
        now = self._monotonic()
        with self._lock:
            last = self._last_out.get(kind)
            if last is not None and now - last < self._config.min_interval_seconds:
                fold = self._folds.get(kind)
                if fold is None:
                    self._folds[kind] = _Fold(1, now, message)
                else:
                    fold.count += 1
                    fold.latest = message
                self._counts["folded"][kind] += 1
                return
            self._last_out[kind] = now
            fold = self._folds.pop(kind, None)
        if fold is not None:
            message = replace(message, body=f"{message.body}\n{self._fold_note(kind, fold)}")
        self._enqueue(kind, message)

    def _fold_note(self, kind: str, fold: _Fold) -> str:
        first_line = fold.latest.body.splitlines()[0] if fold.latest.body else ""
        ago = max(0.0, self._monotonic() - fold.first)
        return (f"(+{fold.count} more {kind} message(s) in the last {ago:.0f} s, held back by the "
                f"{self._config.min_interval_seconds:g} s rate limit; latest: {fold.latest.title}"
                f"{': ' + first_line if first_line else ''})")

    def _enqueue(self, kind: str, message: Message) -> None:
        if self._targets is None:
            self._count("no_target", kind)
            return
        with self._lock:
            if self._closing and self._task is None:
                self._counts["dropped"][kind] += 1
                return
            if len(self._queue) >= QUEUE_LIMIT:
                self._counts["dropped"][kind] += 1
                full = True
            else:
                self._queue.append((kind, message))
                full = False
        if full:
            logger.warning("notify: queue full ({} messages), a {} message dropped", QUEUE_LIMIT, kind)
            return
        self._wake_up()

    def _wake_up(self) -> None:
        loop, wake = self._loop, self._wake
        if loop is None or wake is None or loop.is_closed():
            return  # not started: start() picks the queue up
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            wake.set()
        else:
            loop.call_soon_threadsafe(wake.set)

    # -- delivery --------------------------------------------------------------------------

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                with self._lock:
                    kind, message = self._queue.popleft()
                await self._deliver(kind, message)
            if self._closing:
                return

    async def _deliver(self, kind: str, message: Message) -> None:
        assert self._targets is not None
        title = secrets.mask_text(f"[{self.instance}] {message.title}")
        body = secrets.mask_text(message.body)
        why = ""
        try:
            ok = await asyncio.wait_for(
                asyncio.to_thread(self._targets.notify, body=body, title=title,
                                  notify_type=message.severity.value, body_format="text"),
                self._config.timeout_seconds)
        except asyncio.CancelledError:
            self._count("dropped", kind)
            raise
        except TimeoutError:
            ok, why = False, f"no answer within {self._config.timeout_seconds:g} s"
        except Exception as exc:  # noqa: BLE001 - a broken target must not end the delivery task
            ok, why = False, secrets.mask_text(f"{type(exc).__name__}: {exc}")
        if ok:
            self._count("sent", kind)
            return
        self._count("failed", kind)
        logger.warning("notify: a {} message was not delivered to every target ({}); not retried",
                       kind, why or "apprise reported a failure, see its log line")

    def _build_targets(self, urls: Iterable[str]) -> apprise.Apprise | None:
        urls = [u for u in urls if u.strip()]
        if not urls:
            return None
        import apprise  # only with URLs: loading the plugins takes a few hundred ms

        secrets.register(urls)  # before apprise parses them, so its own log lines are masked too
        targets = apprise.Apprise(asset=apprise.AppriseAsset(secure_logging=True))
        timeout = self._config.timeout_seconds
        for i, url in enumerate(urls):
            plugin = apprise.Apprise.instantiate(url)
            if plugin is None:
                logger.error("notify.urls[{}]: {}", i, url_problem(url))
                continue
            secrets.register(url_secrets(url, plugin))
            # apprise's own socket timeouts (4 s by default), capped by ours
            for attr in ("socket_connect_timeout", "socket_read_timeout"):
                current = getattr(plugin, attr, None)
                if isinstance(current, int | float):
                    setattr(plugin, attr, min(float(current), timeout))
            targets.add(plugin)
        return targets if len(targets) else None
