"""The 55-Tech MM API folded into risk (docs/reference/mm.md; `mm:` in config.yaml,
bot/execution/mm_config.py). Three jobs, all off the hot path:

- combined exposure (`mm.combined_exposure`): a periodic job (`jobs()`, run by the engine on wall
  time like ABP's upkeep) polls `GET /api/v1/positions?status=matched` (matched stake) and
  `GET /api/v1/orders/open` (the unmatched part, orderStake - matchedStake) (MM docs, List
  positions, List open orders), sums them per fixture id and per exchange/bookmaker slug in the
  bot's currency and hands the whole snapshot to `ExternalExposure` (bot/risk/external.py), which
  the fixture and bookmaker caps read. A poll that fails (any row unreadable, a missing exchange
  rate, an HTTP error) changes nothing: the last snapshot ages out and signals are rejected
  MM_STALE (fail closed). A 429 skips the next polls with the documented backoff, 1 s, 2 s, 4 s...
  (MM Error Handling > Rate limiting);
- emergency (`mm.emergency`): the MM WebSocket's `emergency` channel (bot/execution/mm_stream.py)
  becomes a `VenueAlert` EMERGENCY_ON / _OFF with `details["source"] = "mm"`, which risk applies
  as it applies ABP's (`TradingControl.set_emergency`, source named; halt or reduce per
  `risk.emergency_action`, resume per `risk.emergency_resume`) and the engine alerts on;
- kill switch (`mm.cancel_all_on_kill`): `on_kill` (TradingControl's kill callbacks) sends
  `POST /api/v1/orders/cancel-all` in its own task, so the halt never waits for it; logged,
  counted in `stats`; a 429 is retried with the documented backoff up to `mm.cancel_attempts`.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from loguru import logger

from bot.clock import Clock, WallClock
from bot.execution.currency import CurrencyRates, MissingRate
from bot.execution.mm_client import MmAuthError, MmClient, MmError, MmRateLimited
from bot.execution.mm_config import MmConfig
from bot.execution.mm_stream import MmStream
from bot.risk.external import ExternalExposure, ExternalSnapshot
from bot.types import VenueAlert, VenueAlertKind

ZERO = Decimal(0)
SOURCE = "mm"
OnAlert = Callable[[VenueAlert], Awaitable[None]]
log = logger.bind(stage="mm")


class MmLink:
    """See the module docstring. `exposure` is None unless `mm.combined_exposure`; `rates`
    converts `mm.currency` into `currency` (the bot's, `execution.currency`)."""

    def __init__(self, config: MmConfig, *, exposure: ExternalExposure | None, on_alert: OnAlert,
                 currency: str, rates: CurrencyRates | None = None, clock: Clock | None = None,
                 client: MmClient | None = None) -> None:
        self.config = config
        self.exposure = exposure
        self.client = client or MmClient(config)
        self.stream = MmStream(config, self._emergency) if config.emergency else None
        self._on_alert = on_alert
        self._currency = currency.upper()
        self._rates = rates
        self._clock = clock or WallClock()
        self._paused_until = 0.0  # monotonic time before which polls are skipped (429 backoff)
        self._limited = 0  # 429s in a row
        self._tasks: set[asyncio.Task[Any]] = set()
        self.stats: Counter[str] = Counter()

    def jobs(self) -> list[tuple[str, timedelta, Callable[[], Awaitable[None]]]]:
        if self.exposure is None:
            return []
        return [("mm_exposure", timedelta(seconds=self.config.poll_interval_seconds), self._poll)]

    async def _poll(self) -> None:
        await self.refresh()

    async def start(self) -> None:
        """First poll (so trading can start with fresh data) and the emergency stream."""
        if self.stream is not None:
            await self.stream.start()
        if self.exposure is not None:
            await self.refresh()

    async def stop(self) -> None:
        if self.stream is not None:
            await self.stream.stop()
        if self._tasks:  # a cancel-all under way finishes (bounded by its attempts)
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.aclose()

    # -- combined exposure -------------------------------------------------------------------

    async def refresh(self) -> bool:
        """One poll; True when a new snapshot was taken. Never raises."""
        if self.exposure is None:
            return False
        if time.monotonic() < self._paused_until:
            self.stats["polls_skipped"] += 1
            return False
        try:
            positions = await self.client.positions("matched")
            orders = await self.client.open_orders()
            fixture: dict[str, Decimal] = {}
            book: dict[str, Decimal] = {}
            for fixture_id, exchange, amount in (
                *((p.fixture_id, p.exchange, p.matched_stake) for p in positions),
                *((o.fixture_id, o.exchange, o.open_stake) for o in orders),
            ):
                if amount <= 0:
                    continue
                value = self._convert(amount)
                fixture[fixture_id] = fixture.get(fixture_id, ZERO) + value
                book[exchange] = book.get(exchange, ZERO) + value
        except MmRateLimited as exc:
            self._limited += 1
            wait = min(self.config.backoff_initial_seconds * 2 ** (self._limited - 1), self.config.backoff_max_seconds)
            self._paused_until = time.monotonic() + wait
            return self._failed("rate_limited", f"429 from MM: polls paused {wait:g} s ({exc.message})")
        except MmAuthError as exc:
            return self._failed("auth_failed", f"MM refused the API key: {exc.message}", error=True)
        except (MmError, MissingRate) as exc:
            return self._failed("poll_failed", f"MM exposure poll failed: {exc}")
        self._limited = 0
        self.exposure.update(ExternalSnapshot(self._clock.now(), fixture, book))
        self.stats["polls"] += 1
        return True

    def _convert(self, amount: Decimal) -> Decimal:
        """MM amount in the bot's currency. Raises MissingRate (the poll fails: fail closed)."""
        source = self.config.currency.upper()
        if source == self._currency:
            return amount
        if self._rates is None:
            raise MissingRate(source)
        return self._rates.convert(amount, source)

    def _failed(self, counter: str, why: str, *, error: bool = False) -> bool:
        self.stats[counter] += 1
        assert self.exposure is not None
        self.exposure.failed(why)
        (log.error if error else log.warning)("{}; exposure data kept until stale (signals then MM_STALE)", why)
        return False

    # -- emergency ---------------------------------------------------------------------------

    async def _emergency(self, active: bool, reason: str) -> None:
        kind = VenueAlertKind.EMERGENCY_ON if active else VenueAlertKind.EMERGENCY_OFF
        log.warning("MM emergency {}: {}", "ON" if active else "OFF", reason or "no reason given")
        await self._on_alert(VenueAlert(kind, reason, self._clock.now(),
                                        details={"source": SOURCE, "channel": "emergency"}))

    # -- kill switch -------------------------------------------------------------------------

    def on_kill(self, reason: str) -> None:
        """The kill switch fired: cancel every MM order in the background (never blocks the halt)."""
        if not self.config.cancel_all_on_kill:
            return
        task = asyncio.get_running_loop().create_task(self.cancel_all(reason), name="mm-cancel-all")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def cancel_all(self, reason: str) -> bool:
        """POST /api/v1/orders/cancel-all; True when MM accepted it. Never raises."""
        for attempt in range(1, self.config.cancel_attempts + 1):
            try:
                answer = await self.client.cancel_all()
            except MmRateLimited:
                if attempt == self.config.cancel_attempts:
                    break
                wait = min(self.config.backoff_initial_seconds * 2 ** (attempt - 1), self.config.backoff_max_seconds)
                log.warning("MM cancel-all rate limited (attempt {}); retrying in {:g} s", attempt, wait)
                await asyncio.sleep(wait)
                continue
            except Exception as exc:  # noqa: BLE001 - logged and counted; the halt stands regardless
                self.stats["cancel_all_failed"] += 1
                log.error("MM cancel-all on kill switch ({}) failed: {}", reason, exc)
                return False
            self.stats["cancel_all_ok"] += 1
            log.warning("MM cancel-all sent on kill switch ({}): {:.300}", reason, str(answer))
            return True
        self.stats["cancel_all_failed"] += 1
        log.error("MM cancel-all on kill switch ({}) failed: rate limited {} times", reason, self.config.cancel_attempts)
        return False

    def status(self) -> dict[str, Any]:
        return {"stats": dict(self.stats),
                "stream": None if self.stream is None else {"subscribed": self.stream.subscribed.is_set(),
                                                            "emergency": self.stream.emergency},
                "exposure": None if self.exposure is None else self.exposure.status()}
