"""Chaos: the bot LIVE against the local ABP server, SIGKILLed at random points under random faults,
then ledger and server compared (docs/architecture.md, Invariants > Exactly-once placement and
> Nothing lost, nothing silent; docs/reference/abp.md §8.4, §13.4).

The run is cut in epochs of `--kills-per-epoch` kills, each with a fresh local ABP server
(bot/sim/abp_server.py, in this process, so bets are settled and state read through its admin
endpoints) and a fresh ledger:
- `bot run` (a subprocess) trades the bundled replay (config.yaml `feeds.replay`, as fast as
  possible) in live mode; a killed run resumes where it stopped (bot/engine/runs.py). Once the
  replay has finished, the bot runs on a silent live feed (a local BoltOdds server with no frames)
  so it stays up with its live jobs, stream and REST recovery;
- before each start, random server faults (5xx bursts, 429 storms, answers slower than the client
  timeout, orders stored but never answered, ...; whatever GET /_admin/faults offers) and, while it
  runs, one random act (stream dropped, gap, renumbering, emergency on/off, bets settled while the
  stream is down, a bet deleted, a rate change; whichever admin endpoint exists); the bot is
  SIGKILLed 0.2-3 s after its first log line: during start-up reconcile, placement or recovery
  (after STALLED replay runs in a row that never got past their warm-up, 0.2-3 s after the next
  run's first traded event);
- at the end every fault is cleared, every order left to finish, every bet settled WON/LOST at
  random, and a last bot run recovers until ledger and server agree (or `--settle-timeout`).

Printed at the end, summed over epochs: kills, server orders, ledger orders, duplicates (server
orders sharing a signal or a requestUuid), orphans (server orders the ledger does not know), lost
fills (server bets missing in the ledger or with another stake), lost settlements (server-settled
bets unsettled or different in the ledger), stuck orders (ledger orders not final whose server
order is final or absent), wrong final status, ghost bets (ledger bets the server does not have)
and the PnL difference (ledger settled PnL - GET /pnl totalNetPnl, to the cent), then how many
signals risk approved or rejected and why. Exit 0 only when all counters are zero; 2 when the bot
could not run (3 failed starts in a row). `--seed` reproduces the plan (faults, acts, kill delays);
what they hit depends on timing. Each bot run's console log and each epoch's differences and API
request counts (diff.json) are kept in `--workdir`.

    python bench/chaos.py [--kills 200] [--seed S] [--workdir DIR] [--kills-per-epoch 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import yaml
from loguru import logger

from bot.sim.abp_server import LocalAbpServer
from bot.sim.bolt_server import BoltServer
from bot.types import FINAL_ORDER_STATUSES

ROOT = Path(__file__).resolve().parent.parent
REPLAY = ROOT / "bot" / "data" / "nfl_raw_snapshots_2025-11-16.jsonl.gz"
RESULTS = ROOT / "bot" / "data" / "nfl_results_2025-11-16.csv"
MAPPING = ROOT / "tests" / "data" / "mapping_nfl_2025-11-16.yaml"
# The books of the recording: the server offers them, so every signal can reach one.
BOOKS = ("betmgm", "betonlineag", "betrivers", "betus", "bovada", "draftkings", "fanatics", "fanduel", "lowvig",
         "mybookieag", "williamhill_us")
EUR_BOOK = "williamhill_us"  # one account in EUR: stakes and settlements unconverted (docs/reference/abp.md §11)
ABP_KEY, BOLT_KEY = "chaos-abp-key", "chaos-bolt-key"
READY = "engine started: mode="
CENT = Decimal("0.01")
FINAL = {s.value for s in FINAL_ORDER_STATUSES}
GONE_BETS = {"CANCELLED", "REJECTED", "FAILED", "VOID", "DELETED"}  # ledger bets that may be gone from the server

# Bot timers short enough that recovery happens within seconds (bot/execution/config.py).
TIMEOUT, PLACE_TIMEOUT = 1.5, 1.0
ABP_TIMERS = {
    "timeout_seconds": TIMEOUT, "place_timeout_seconds": PLACE_TIMEOUT, "requests_per_second": 1000,
    "max_attempts": 4, "backoff_initial_seconds": 0.05, "backoff_max_seconds": 0.5, "ws_ping_seconds": 1,
    "ws_login_timeout_seconds": 2, "ws_reconnect_initial_seconds": 0.05, "ws_reconnect_max_seconds": 0.5,
    "ws_dead_after_seconds": 3, "ws_gap_wait_seconds": 0.5, "emergency_wait_seconds": 0.5,
    "recovery_interval_seconds": 2,
}
EXECUTION_TIMERS = {"reconcile_interval_seconds": 0.5, "unknown_grace_seconds": 3}
BREAKER = {"cooldown_seconds": 2}
# After this many replay runs in a row killed during their warm-up (a resume re-reads the events it
# had handled, without trading), the next kill is counted from its first traded event, so the
# replay still gets through.
STALLED = 2
# Faults that last one bot run (the counted ones, fail_5xx..., are used up by requests).
TRANSIENT = ("delay_seconds", "place_delay_seconds", "silent", "no_status")


# -- comparing ledger and server ----------------------------------------------------------------


@dataclass
class Tally:
    """What one comparison found; `details` names each offending order or bet."""

    kills: int = 0
    server_orders: int = 0
    ledger_orders: int = 0
    duplicates: int = 0
    orphans: int = 0
    lost_fills: int = 0
    lost_settlements: int = 0
    stuck: int = 0
    wrong_status: int = 0
    ghost_bets: int = 0
    ledger_pnl: Decimal = Decimal(0)
    server_pnl: Decimal = Decimal(0)
    decisions: Counter[str] = field(default_factory=Counter)  # "APPROVED", "REJECTED <reason>"
    details: list[str] = field(default_factory=list)

    ERRORS = ("duplicates", "orphans", "lost_fills", "lost_settlements", "stuck", "wrong_status", "ghost_bets")

    @property
    def pnl_diff(self) -> Decimal:
        return (self.ledger_pnl - self.server_pnl).quantize(CENT) + 0  # + 0: a sub-cent difference prints 0.00, not -0.00

    @property
    def clean(self) -> bool:
        return not any(getattr(self, name) for name in self.ERRORS) and self.pnl_diff == 0

    def add(self, other: Tally) -> None:
        for name in ("kills", "server_orders", "ledger_orders", *self.ERRORS):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.ledger_pnl += other.ledger_pnl
        self.server_pnl += other.server_pnl
        self.decisions += other.decisions
        self.details += other.details

    def counters(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ("kills", "server_orders", "ledger_orders", *self.ERRORS)} \
            | {"pnl_diff": str(self.pnl_diff)}

    def flag(self, counter: str, line: str) -> None:
        setattr(self, counter, getattr(self, counter) + 1)
        self.details.append(f"{counter}: {line}")

    def lines(self) -> list[str]:
        return [
            f"kills: {self.kills}", f"server orders: {self.server_orders}", f"ledger orders: {self.ledger_orders}",
            f"duplicates: {self.duplicates}", f"orphans: {self.orphans}", f"lost fills: {self.lost_fills}",
            f"lost settlements: {self.lost_settlements}", f"stuck orders: {self.stuck}",
            f"wrong final status: {self.wrong_status}", f"ghost bets: {self.ghost_bets}",
            (f"PnL difference: {self.pnl_diff} (ledger {self.ledger_pnl.quantize(CENT)}, "
             f"server {self.server_pnl.quantize(CENT)})"),
            "decisions: " + (", ".join(f"{k} {n}" for k, n in self.decisions.most_common()) or "none"),
        ]


@dataclass
class LedgerView:
    """The rows of a ledger the comparison needs, read beside a running bot."""

    orders: dict[str, sqlite3.Row]  # request_uuid ->
    bets: dict[int, sqlite3.Row]  # bet_id ->
    settlements: dict[int, sqlite3.Row]  # bet_id ->
    decisions: Counter[str] = field(default_factory=Counter)  # how much trading the faults let through

    @classmethod
    def read(cls, db: Path) -> LedgerView:
        if not db.exists():
            return cls({}, {}, {})
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
        con.row_factory = sqlite3.Row
        try:
            orders = {r["request_uuid"]: r for r in con.execute("select * from orders")}
            bets = {r["bet_id"]: r for r in con.execute("select * from bets")}
            settlements = {r["bet_id"]: r for r in con.execute("select * from settlements")}
            decisions = Counter({" ".join(filter(None, (r[0], r[1]))): r[2] for r in con.execute(
                "select verdict, reason, count(*) from decisions group by verdict, reason")})
        finally:
            con.close()
        return cls(orders, bets, settlements, decisions)

    @property
    def pnl(self) -> Decimal:
        """Settled PnL in the venue's own units, summed as GET /pnl sums them (mixed currencies
        unconverted, docs/reference/abp.md §11); the ledger keeps them beside the converted ones."""
        return sum((Decimal(_venue(r, "venue_amount", "amount")) - Decimal(_venue(r, "venue_stake", "stake"))
                    for r in self.settlements.values()), Decimal(0))


def _venue(row: sqlite3.Row, column: str, fallback: str) -> Any:
    """A ledger amount as the venue sent it (before conversion into the bot's currency)."""
    value = row[column]
    return row[fallback] if value is None else value


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value)).quantize(CENT)


def _server_final(order: dict[str, Any], now: datetime) -> bool:
    """Final on the server: a final status, or partly filled past its expiry (nothing more comes)."""
    if order["orderStatus"] in FINAL:
        return True
    expires = order.get("expiresAt")
    return order["orderStatus"] == "PARTIALLY_FILLED" and expires is not None and \
        datetime.fromisoformat(expires) <= now


def compare(state: dict[str, Any], server_pnl: Decimal, ledger: LedgerView, now: datetime) -> Tally:
    """Ledger vs server (GET /_admin/state, GET /pnl totalNetPnl); see the module docstring."""
    orders, bets = state["orders"], state["bets"]
    t = Tally(server_orders=len(orders), ledger_orders=len(ledger.orders), ledger_pnl=ledger.pnl,
              server_pnl=server_pnl, decisions=ledger.decisions)
    by_uuid = {o["requestUuid"]: o for o in orders}
    for key, name in (("requestUuid", "requestUuid"), ("signal_id", "signal")):
        groups = Counter(o["requestUuid"] if key == "requestUuid" else (o.get("meta") or {}).get(key)
                         for o in orders)
        for value, n in groups.items():
            for _ in range(n - 1 if value is not None else 0):
                t.flag("duplicates", f"{n} server orders share {name} {value}")
    for o in orders:
        if o["requestUuid"] not in ledger.orders:
            t.flag("orphans", f"server order {o['orderId']} {o['requestUuid']} {o['orderStatus']} "
                              f"signal {(o.get('meta') or {}).get('signal_id')}")
    for uuid, row in ledger.orders.items():
        server = by_uuid.get(uuid)
        if row["status"] not in FINAL and (server is None or _server_final(server, now)):
            where = "absent" if server is None else server["orderStatus"]
            t.flag("stuck", f"ledger order {uuid} {row['status']} (server: {where}) signal {row['signal_id']}")
        elif row["status"] in FINAL and server is not None and _server_final(server, now) \
                and row["status"] != server["orderStatus"]:
            t.flag("wrong_status", f"order {uuid}: ledger {row['status']}, server {server['orderStatus']}")
    _compare_bets(t, bets, ledger)
    return t


def _compare_bets(t: Tally, bets: list[dict[str, Any]], ledger: LedgerView) -> None:
    for bet in bets:
        bet_id, row = bet["betId"], ledger.bets.get(bet["betId"])
        if row is None or _dec(_venue(row, "venue_stake", "placed_stake")) != _dec(bet["placedStake"]):
            have = "missing" if row is None else f"stake {_venue(row, 'venue_stake', 'placed_stake')}"
            t.flag("lost_fills", f"bet {bet_id} of {bet['requestUuid']} stake {bet['placedStake']}: ledger {have}")
        if bet["settlementStatus"] == "UNSETTLED":
            continue
        settled = ledger.settlements.get(bet_id)
        amount = _dec(bet["settlementAmount"])
        if row is None or row["settlement_status"] != bet["settlementStatus"] or settled is None \
                or _dec(_venue(settled, "venue_amount", "amount")) != amount \
                or _dec(_venue(row, "venue_amount", "settlement_amount")) != amount:
            have = "no bet" if row is None else f"{row['settlement_status']} {row['venue_amount']}, " \
                f"settlement row {'none' if settled is None else settled['venue_amount']}"
            t.flag("lost_settlements", f"bet {bet_id} {bet['settlementStatus']} {bet['settlementAmount']}: "
                                       f"ledger {have}")
    on_server = {b["betId"] for b in bets}
    for bet_id, row in ledger.bets.items():
        if bet_id not in on_server and row["bet_status"] not in GONE_BETS:
            t.flag("ghost_bets", f"ledger bet {bet_id} of {row['request_uuid']} {row['bet_status']} "
                                 f"{row['settlement_status']} is not on the server")


# -- one bot process ----------------------------------------------------------------------------


class BotRun:
    """`bot run -c <config>` in a subprocess; its console log (stderr) goes to `log`."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Path) -> None:
        self.proc, self.log = proc, log
        self.first_line = asyncio.Event()
        self.ready = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, config: Path, log: Path) -> BotRun:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "-c", str(config), cwd=config.parent, env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        return cls(proc, log)

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        with self.log.open("w") as out:
            async for raw in self.proc.stderr:
                line = raw.decode(errors="replace").rstrip("\n")
                out.write(line + "\n")
                self.first_line.set()
                if READY in line:
                    self.ready.set()
        self.first_line.set()  # ended without a line: nobody waits forever

    async def started(self, timeout: float) -> bool:
        """Wait until the engine has started (reconciled); False when it ended or `timeout` passed."""
        ready, ended = asyncio.ensure_future(self.ready.wait()), asyncio.ensure_future(self.proc.wait())
        await asyncio.wait({ready, ended}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        ended.cancel()
        return self.ready.is_set()

    async def run_for(self, seconds: float) -> int | None:
        """Let it run `seconds`, then SIGKILL it; None when killed, else its own exit code."""
        try:
            return await asyncio.wait_for(asyncio.shield(self.proc.wait()), seconds)
        except TimeoutError:
            if self.proc.returncode is not None:  # it ended as the time ran out
                return self.proc.returncode
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()
            return None
        finally:
            await self._reader

    async def stop(self, timeout: float = 20) -> int:
        """SIGTERM (a graceful stop), SIGKILL after `timeout`."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.send_signal(signal.SIGKILL)
            code = await self.proc.wait()
        await self._reader
        return code

    def tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


# -- one epoch: a server, a ledger, its kills and the final comparison ---------------------------------


def _server_log(path: Path) -> None:
    """The in-process servers' logs (loguru, and uvicorn's, which each start re-points at stderr) go
    to `path`, so the console shows the progress lines only."""
    logger.remove()
    logger.add(path, level="INFO")
    handler = logging.FileHandler(path)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        for old in logging.getLogger(name).handlers:
            old.close()
        logging.getLogger(name).handlers = [handler]


def _bot_config(folder: Path, base_url: str, min_edge: float, bolt: BoltServer | None) -> Path:
    """The default config.yaml, live on the local server: the replay (`bolt` None) or a silent
    live BoltOdds feed, with short timers."""
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg.update(mode="live", state_dir=str(folder / "state"),
               mapping={"file": str(MAPPING), "use_abp_markets": False},
               logging={"level": "INFO", "json_file": False, "progress": False})
    cfg["settlement"]["nfl_results"] = str(RESULTS)
    cfg["strategies"][0]["params"]["min_edge"] = min_edge
    cfg["abp"] = {"api_key": ABP_KEY, "base_url": base_url, "ws_url": base_url.replace("http", "ws", 1) + "/ws",
                  **ABP_TIMERS}
    cfg["execution"].update(EXECUTION_TIMERS)
    cfg["risk"].update(emergency_resume="auto", max_orders_per_window=1000, bookmaker_breaker=BREAKER,
                       global_breaker=BREAKER)
    if bolt is None:
        cfg["feeds"]["replay"].update(path=str(REPLAY), speed=0)
        name = "replay.yaml"
    else:
        cfg["feeds"] = {"replay": None, "boltodds": {
            "url": bolt.url, "rest_url": bolt.rest_url, "api_key": BOLT_KEY, "sportsbooks": ["draftkings"],
            "check_filters": False}}
        name = "idle.yaml"
    path = folder / name
    path.write_text(yaml.safe_dump(cfg))
    return path


@dataclass
class Plan:
    """The seeded choices (faults, acts, delays) and the timing-dependent ones (bets)."""

    plan: random.Random
    pick: random.Random
    min_delay: float
    max_delay: float


class Epoch:
    def __init__(self, number: int, folder: Path, plan: Plan, args: argparse.Namespace) -> None:
        self.number, self.folder, self.plan, self.args = number, folder, plan, args
        self.server = LocalAbpServer(
            api_key=ABP_KEY, bookmakers=BOOKS, book_currencies={EUR_BOOK: "EUR"}, rates={"EUR": 0.92},
            ping_seconds=1.0, resend_seconds=1.0, login_timeout_seconds=2.0)
        self.bolt = BoltServer([], api_key=BOLT_KEY, ping_interval=1.0)
        self.admin: httpx.AsyncClient
        self.defaults: dict[str, Any] = {}
        self.emergency = False
        self.runs = 0
        self.bot: BotRun | None = None
        self.stalled = 0  # replay runs in a row killed before they got past their warm-up

    @property
    def db(self) -> Path:
        return self.folder / "state" / "bot.db"

    async def run(self, kills: int, total: Tally) -> Tally:
        self.folder.mkdir(parents=True, exist_ok=True)
        base_url = await self.server.start()
        _server_log(self.folder / "server.log")
        await self.bolt.start()
        self.admin = httpx.AsyncClient(base_url=base_url, timeout=10)
        try:
            self.defaults = (await self.admin.get("/_admin/faults")).json()
            if "drop_hang_seconds" in self.defaults:  # a dropped answer's handler ends soon after the client gave up
                self.defaults["drop_hang_seconds"] = TIMEOUT + 2
                await self._faults({"drop_hang_seconds": TIMEOUT + 2})
            self.replay_cfg = _bot_config(self.folder, base_url, self.args.min_edge, None)
            self.idle_cfg = _bot_config(self.folder, base_url, self.args.min_edge, self.bolt)
            killed, failures = 0, 0
            while killed < kills:
                was_killed, crashed = await self._cycle(total.kills + killed + 1)
                killed += was_killed
                failures = failures + 1 if crashed else 0
                if failures >= 3:
                    raise RuntimeError(f"epoch {self.number}: the bot failed 3 times in a row, see {self.folder}")
            return await self._final(killed)
        finally:
            if self.bot is not None and self.bot.proc.returncode is None:  # the epoch failed half way
                self.bot.proc.send_signal(signal.SIGKILL)
                await self.bot.proc.wait()
            await self.admin.aclose()
            await self.bolt.stop()
            await self.server.stop()

    # -- one start and kill -----------------------------------------------------------------------

    def _replay_finished(self) -> bool:
        if not self.db.exists():
            return False
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            rows = con.execute("select 1 from runs where source like 'replay:%' and outcome = 'finished'").fetchall()
        finally:
            con.close()
        return bool(rows)

    async def _cycle(self, kill_no: int) -> tuple[bool, bool]:
        """Faults, a bot start, an act, a kill. Returns (killed, crashed)."""
        self.runs += 1
        replay = not self._replay_finished()
        faults = self._pick_faults()
        if self.emergency and self.plan.plan.random() < 0.7:
            await self._emergency(False)
            faults["emergency"] = False
        await self._faults({k: v for k, v in faults.items() if k != "emergency"})
        bot = self.bot = await BotRun.start(self.replay_cfg if replay else self.idle_cfg,
                                            self.folder / f"run-{self.runs:03d}.log")
        delay = self.plan.plan.uniform(self.plan.min_delay, self.plan.max_delay)
        act = self._pick_act()
        act_at = self.plan.plan.uniform(0, delay)
        await asyncio.wait_for(bot.first_line.wait(), 60)
        warmed = replay and self.stalled >= STALLED and await self._traded(bot)
        started = time.monotonic()
        act_task = asyncio.create_task(self._act_later(act, act_at)) if act else None
        code = await bot.run_for(delay)
        if act_task is not None:
            act_task.cancel()
            (failed,) = await asyncio.gather(act_task, return_exceptions=True)
            if isinstance(failed, Exception):
                print(f"act {act} failed: {type(failed).__name__}: {failed}", flush=True)
        phase = "trading after warm-up" if warmed else "running" if bot.ready.is_set() else "start-up"
        if replay:
            progress = self._progress(bot.proc.pid)
            self.stalled = self.stalled + 1 if progress is not None and progress[1] <= progress[0] else 0
        await self._faults({k: self.defaults[k] for k in TRANSIENT if k in self.defaults})
        state = (await self.admin.get("/_admin/state")).json()
        ledger = LedgerView.read(self.db)
        what = ", ".join(f"{k}={v}" for k, v in faults.items()) or "no fault"
        ran = f"{time.monotonic() - started:.2f} s"
        if code is None:
            print(f"kill {kill_no:4d} epoch {self.number} run {self.runs:3d} [{'replay' if replay else 'idle'}] "
                  f"after {ran} in {phase}; {what}; act {act or '-'}@{act_at:.2f}s; "
                  f"server {len(state['orders'])} orders {len(state['bets'])} bets, ledger {len(ledger.orders)} "
                  f"orders", flush=True)
            return True, False
        crashed = code != 0 or not replay
        print(f"exit {code} epoch {self.number} run {self.runs:3d} [{'replay' if replay else 'idle'}] after {ran}"
              f"{' (replay finished)' if not crashed else ''}; {what}", flush=True)
        if crashed:
            print(bot.tail(), flush=True)
        return False, crashed

    def _progress(self, pid: int) -> tuple[int, int] | None:
        """(warm-up events, events handled) of the run of process `pid` (bot/engine/runs.py)."""
        if not self.db.exists():
            return None
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            row = con.execute("select warmup_events, last_event_seq from runs where pid = ? order by id desc limit 1",
                              (pid,)).fetchone()
        finally:
            con.close()
        return None if row is None else (int(row[0]), int(row[1]))

    async def _traded(self, bot: BotRun, timeout: float = 15) -> bool:
        """Wait until the run has handled an event past its warm-up; False when it ended or did not
        in `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and bot.proc.returncode is None:
            progress = self._progress(bot.proc.pid)
            if progress is not None and progress[1] > progress[0]:
                return True
            await asyncio.sleep(0.1)
        return False

    def _pick_faults(self) -> dict[str, Any]:
        rng, known = self.plan.plan, self.defaults
        menu: dict[str, Any] = {
            "fail_5xx": rng.randint(1, 6), "rate_limit": rng.randint(1, 6), "delay_seconds": TIMEOUT + 0.5,
            "drop_after_store": rng.randint(1, 2), "place_delay_seconds": PLACE_TIMEOUT + 0.5,
            "timeout_n": rng.randint(1, 3), "ws_gap": rng.randint(1, 4), "silent": True, "no_status": True,
        }
        names = [n for n in menu if n in known]
        chosen = rng.sample(names, min(len(names), rng.choice((0, 1, 1, 2, 3))))
        faults = {n: menu[n] for n in sorted(chosen)}
        if "rate_limit" in faults and "retry_after" in known:
            faults["retry_after"] = 0.2
        return faults

    def _pick_act(self) -> str | None:
        routes = {getattr(r, "path", "") for r in self.server.app.routes}
        acts = ["ws_drop", "settle", "settle_while_down", "emergency"]
        acts += [a for a, path in (("renumber", "/_admin/renumber"), ("restart", "/_admin/restart"),
                                   ("delete_bet", "/_admin/delete-bet"), ("rates", "/_admin/rates"))
                 if path in routes]
        rng = self.plan.plan
        act = rng.choice(acts)  # drawn always, so the plan does not depend on the draw below
        return act if rng.random() < 0.7 else None

    async def _act_later(self, act: str, at: float) -> None:
        await asyncio.sleep(at)
        if act in ("ws_drop", "settle_while_down"):
            await self.admin.post("/_admin/ws-drop")
        if act in ("settle", "settle_while_down"):
            await self._settle(self.plan.pick.randint(1, 3))
        elif act == "emergency":
            await self._emergency(not self.emergency)
        elif act in ("renumber", "restart"):
            await self.admin.post(f"/_admin/{act}")
        elif act == "delete_bet":
            bets = await self._unsettled()
            if bets:
                await self.admin.post("/_admin/delete-bet", json={"betId": self.plan.pick.choice(bets)})
        elif act == "rates":
            await self.admin.post("/_admin/rates", json={"EUR": round(self.plan.pick.uniform(0.85, 0.95), 4)})

    async def _faults(self, changes: dict[str, Any]) -> None:
        if changes:
            r = await self.admin.post("/_admin/faults", json=changes)
            r.raise_for_status()

    async def _emergency(self, active: bool) -> None:
        await self.admin.post("/_admin/emergency", json={"active": active, "reason": "chaos"})
        self.emergency = active

    async def _unsettled(self) -> list[int]:
        bets = (await self.admin.get("/_admin/state")).json()["bets"]
        return [b["betId"] for b in bets if b["settlementStatus"] == "UNSETTLED"]

    async def _settle(self, n: int | None) -> int:
        """Settle `n` (None: every) unsettled bets WON or LOST at random."""
        bets = await self._unsettled()
        chosen = bets if n is None else self.plan.pick.sample(bets, min(n, len(bets)))
        for bet_id in chosen:
            status = self.plan.pick.choice(("WON", "LOST"))
            (await self.admin.post("/_admin/settle", json={"betId": bet_id, "status": status})).raise_for_status()
        return len(chosen)

    # -- the end: settle everything, a last recovery, compare -------------------------------------

    async def _final(self, kills: int) -> Tally:
        await self._faults(self.defaults)
        if self.emergency:
            await self._emergency(False)
        await self._until(self._orders_final, self.args.settle_timeout)
        early = self.plan.plan.random() < 0.5  # settled while no bot runs: only REST recovery finds them
        settled = await self._settle(None) if early else 0
        self.runs += 1
        bot = self.bot = await BotRun.start(self.idle_cfg, self.folder / f"run-{self.runs:03d}-final.log")
        if not await bot.started(self.args.settle_timeout):
            print(f"final bot did not start:\n{bot.tail()}", flush=True)
        settled += 0 if early else await self._settle(None)
        await self._until(self._agree, self.args.settle_timeout)
        code = await bot.stop()
        if code != 0:
            print(f"final bot exited {code}:\n{bot.tail()}", flush=True)
        tally = await self._compare()  # again, after the graceful stop
        tally.kills = kills
        tally.details = [f"epoch {self.number} {line}" for line in tally.details]
        requests = Counter(f"{r['method']} {r['path']}" for r in (await self.admin.get("/_admin/requests")).json())
        (self.folder / "diff.json").write_text(json.dumps(
            {**tally.counters(), "ledger_pnl": str(tally.ledger_pnl), "server_pnl": str(tally.server_pnl),
             "decisions": dict(tally.decisions), "details": tally.details,
             "api_requests": dict(requests.most_common())}, indent=2))
        print(f"epoch {self.number}: settled {settled} bets at the end; "
              + "; ".join(tally.lines()[1:]), flush=True)
        return tally

    async def _compare(self) -> Tally:
        state = (await self.admin.get("/_admin/state")).json()
        pnl = (await self.admin.get("/pnl", headers={"x-api-key": ABP_KEY})).json()
        return compare(state, Decimal(str(pnl.get("totalNetPnl", 0))), LedgerView.read(self.db), datetime.now(UTC))

    async def _orders_final(self) -> Tally | None:
        state = (await self.admin.get("/_admin/state")).json()
        now = datetime.now(UTC)
        return Tally() if all(_server_final(o, now) for o in state["orders"]) else None

    async def _agree(self) -> Tally | None:
        tally = await self._compare()
        return tally if tally.clean else None

    @staticmethod
    async def _until(check: Callable[[], Awaitable[Tally | None]], timeout: float) -> Tally | None:
        """Poll `check` every 0.2 s until it returns a Tally, or `timeout` passes (then None)."""
        deadline = time.monotonic() + timeout
        while True:
            found = await check()
            if found is not None or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.2)


# -- main -------------------------------------------------------------------------------------------


async def chaos(args: argparse.Namespace) -> Tally:
    seeds = random.Random(args.seed)
    plan = Plan(random.Random(seeds.random()), random.Random(seeds.random()), args.min_delay, args.max_delay)
    total, number = Tally(), 0
    while total.kills < args.kills:
        number += 1
        kills = min(args.kills_per_epoch, args.kills - total.kills)
        tally = await Epoch(number, args.workdir / f"epoch-{number:03d}", plan, args).run(kills, total)
        total.add(tally)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a new temporary folder")
    parser.add_argument("--kills-per-epoch", type=int, default=20,
                        help="kills on one server and ledger; once its replay is through, kills land on the idle bot")
    parser.add_argument("--min-delay", type=float, default=0.2, help="seconds after the bot's first log line")
    parser.add_argument("--max-delay", type=float, default=3.0)
    parser.add_argument("--settle-timeout", type=float, default=60.0,
                        help="seconds the final recovery may take before the comparison counts")
    parser.add_argument("--min-edge", type=float, default=0.01, help="value strategy min_edge (more signals)")
    parser.add_argument("--json", type=Path, default=None, help="also write the counters here")
    args = parser.parse_args()
    args.seed = random.randrange(1 << 31) if args.seed is None else args.seed
    args.workdir = (args.workdir or Path(tempfile.mkdtemp(prefix=f"chaos-{args.seed}-"))).resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"chaos: {args.kills} kills, seed {args.seed}, workdir {args.workdir}", flush=True)
    started = time.monotonic()
    try:
        total = asyncio.run(chaos(args))
    except (RuntimeError, TimeoutError) as exc:  # the bot cannot run at all: no comparison to make
        print(f"chaos aborted: {type(exc).__name__}: {exc}", flush=True)
        raise SystemExit(2) from None
    print(f"--- {time.monotonic() - started:.1f} s, seed {args.seed}")
    print("\n".join(total.lines()))
    for line in total.details[:60]:
        print("  " + line)
    if args.json is not None:
        args.json.write_text(json.dumps(total.counters()))
    raise SystemExit(0 if total.clean else 1)


if __name__ == "__main__":
    main()
