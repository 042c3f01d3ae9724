"""Ledger history: the default replay on ledgers that already hold many earlier orders.

`bot run` with the default config.yaml (paper mode, the bundled NFL replay, as fast as possible)
is built the way the CLI builds it (`bot.engine.wiring.build_engine`, docs/architecture.md
"Pipeline") on a ledger pre-filled with 0, 14,000 and 140,000 historical orders. The history is
real-shaped: the default replay is run once into a template ledger, and its signals, decisions,
orders, bets and settlements are copied with fresh uuids and ids, each copy days older than the
last (so no risk window sees it). Every other copy has its results mirrored (a LOST bet WON at its
price, a WON one LOST), so the history's settled PnL stays near its peak and the drawdown limit
trades as on an empty ledger; kickoffs in selection keys move with the copy, so every copy is on
fixtures of its own. The event log is not copied (nothing in a run reads it).

Each size runs in a fresh subprocess; printed per size: start-up seconds (build_engine until the
"engine started" log line), run seconds (until `Engine.run` returns: the replay, its end-of-replay
settlement, shutdown), per-signal cost (run seconds / EngineStats.signals), peak RSS
(getrusage ru_maxrss) and each ratio to the empty ledger. Goal at 140,000: run and per-signal
within +20 % of empty, start-up <= 2 s, peak RSS <= 150 MB.

    python bench/ledger_history.py [--sizes 0,14000,140000] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "config.yaml"
READY = "engine started: mode="
SIZES = (0, 14_000, 140_000)
QUICK_SIZES = (0, 14_000)
COPY_GAP = timedelta(hours=6)  # each copy of the template this much older than the previous one
FIRST_GAP = timedelta(days=3)  # the newest copy: outside risk.duplicate_window_seconds (1 day)
GOAL_RATIO, GOAL_START, GOAL_RSS_MB = 1.2, 2.0, 150.0
CENT = Decimal("0.01")
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # how the ledger stores UTC datetimes in SQLite
KICKOFF = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ")  # in Selection / FixtureKey keys
KICKOFF_FORMAT = "%Y-%m-%dT%H:%MZ"
COPIED = ("signals", "decisions", "orders", "bets", "settlements")


# -- one measured run (the child process) -----------------------------------------------------

def child(state_dir: Path) -> None:
    """Build and run the default replay on `state_dir`'s ledger; print one JSON line."""
    from loguru import logger

    from bot.config.settings import load_settings
    from bot.engine.wiring import build_engine

    settings = load_settings(CONFIG, state_dir=str(state_dir))
    quiet = settings.logging.model_copy(update={"progress": False, "json_file": False})
    settings = settings.model_copy(update={"logging": quiet})
    marks: dict[str, float] = {}
    logger.remove()
    logger.add(lambda m: _mark(marks, m), level="INFO", format="{message}")

    async def main() -> dict[str, Any]:
        begin = time.perf_counter()
        engine = await build_engine(settings, config_dir=ROOT)
        stats = await engine.run()
        end = time.perf_counter()
        return {"start": marks["ready"] - begin, "run": end - marks["ready"], "signals": stats.signals,
                "events": stats.events, "orders": stats.orders_submitted, "settled": stats.settled}

    result = asyncio.run(main())
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps(result))


def _mark(marks: dict[str, float], message: str) -> None:
    """Note when the engine logs that it started (start-up ends, the run begins)."""
    if READY in message:
        marks.setdefault("ready", time.perf_counter())


def measure(state_dir: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", str(state_dir)], capture_output=True, text=True,
                         check=False, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"replay on {state_dir} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- history -----------------------------------------------------------------------------------

def _rows(db: sqlite3.Connection, table: str) -> tuple[list[str], list[dict[str, Any]]]:
    cur = db.execute(f"SELECT * FROM {table} ORDER BY id")  # table names are ours
    names = [d[0] for d in cur.description if d[0] != "id"]
    return names, [dict(zip([d[0] for d in cur.description], row, strict=True)) for row in cur]


def _shift(value: str | None, by: timedelta) -> str | None:
    return None if value is None else (datetime.strptime(value, TIME_FORMAT) - by).strftime(TIME_FORMAT)


def _rekey(value: str, by: timedelta) -> str:
    """A selection or fixture key with its kickoff moved `by` earlier: another fixture."""
    def older(m: re.Match[str]) -> str:
        return (datetime.strptime(m.group(0), KICKOFF_FORMAT) - by).strftime(KICKOFF_FORMAT)
    return KICKOFF.sub(older, value)


def _mirror(stake: str, price: float, status: str) -> tuple[str, Decimal] | None:
    """(status, amount) of the opposite result of a back bet; None when it has none."""
    if status == "LOST":
        return "WON", (Decimal(stake) * Decimal(str(price))).quantize(CENT)
    if status == "WON":
        return "LOST", Decimal(0)
    return None


class Template:
    """The rows of one real replay's ledger, copied as often as needed."""

    def __init__(self, path: Path) -> None:
        with sqlite3.connect(path) as db:
            self.tables = {t: _rows(db, t) for t in COPIED}
            self.origin = min(datetime.strptime(r["created_at"], TIME_FORMAT) for r in self.tables["orders"][1])
            prices = {b["bet_id"]: b["placed_price"] for b in self.tables["bets"][1]}
            self.price_of = prices
        self.orders = len(self.tables["orders"][1])

    def copy(self, n: int, newest: datetime) -> dict[str, list[dict[str, Any]]]:
        """Copy number `n` (0 = newest): fresh ids, times `newest` - n gaps before the template's,
        results mirrored on odd copies."""
        by = self.origin - newest + FIRST_GAP + n * COPY_GAP
        mirror = n % 2 == 1
        signal_ids = {r["signal_id"]: str(uuid.uuid4()) for r in self.tables["signals"][1]}
        uuids = {r["request_uuid"]: str(uuid.uuid4()) for r in self.tables["orders"][1]}
        base = (n + 1) * 10 * self.orders  # venue ids below the replay's new ones: set by the caller
        out: dict[str, list[dict[str, Any]]] = {t: [] for t in COPIED}
        for r in self.tables["signals"][1]:
            out["signals"].append({**r, "signal_id": signal_ids[r["signal_id"]], "created_at": _shift(r["created_at"], by),
                                   "selection": _rekey(r["selection"], by), "fixture": _rekey(r["fixture"], by)})
        for r in self.tables["decisions"][1]:
            out["decisions"].append({**r, "signal_id": signal_ids.get(r["signal_id"], str(uuid.uuid4())),
                                     "at": _shift(r["at"], by)})
        for r in self.tables["orders"][1]:
            out["orders"].append({**r, "request_uuid": uuids[r["request_uuid"]],
                                  "signal_id": signal_ids.get(r["signal_id"], str(uuid.uuid4())),
                                  "order_id": None if r["order_id"] is None else base + r["order_id"],
                                  "selection": _rekey(r["selection"], by), "fixture": _rekey(r["fixture"], by),
                                  **{k: _shift(r[k], by) for k in ("created_at", "updated_at", "expires_at")}})
        for r in self.tables["bets"][1]:
            row = {**r, "bet_id": base + r["bet_id"], "request_uuid": uuids[r["request_uuid"]],
                   "order_id": None if r["order_id"] is None else base + r["order_id"],
                   **{k: _shift(r[k], by) for k in ("placed_at", "settled_at", "updated_at")}}
            if mirror and (m := _mirror(r["placed_stake"], r["placed_price"], r["settlement_status"])):
                row["settlement_status"], row["settlement_amount"] = m[0], str(m[1])
                row["venue_amount"] = str(m[1])
            out["bets"].append(row)
        for r in self.tables["settlements"][1]:
            row = {**r, "bet_id": base + r["bet_id"], "request_uuid": uuids[r["request_uuid"]], "at": _shift(r["at"], by)}
            if mirror and (m := _mirror(r["stake"], self.price_of[r["bet_id"]], r["status"])):
                row["status"], row["amount"], row["venue_amount"] = m[0], str(m[1]), str(m[1])
                row["pnl"] = str(m[1] - Decimal(r["stake"]))
            out["settlements"].append(row)
        return out

    def fill(self, path: Path, orders: int) -> int:
        """A new ledger at `path` holding at least `orders` historical orders; returns how many."""
        from bot.ledger.store import Ledger

        Ledger(path).close()  # schema and migrations as the bot makes them
        copies = -(-orders // self.orders)
        newest = self.origin
        with sqlite3.connect(path) as db:
            for n in range(copies):
                for table, rows in self.copy(copies - 1 - n, newest).items():  # oldest first, as written
                    names = self.tables[table][0]
                    marks = ", ".join("?" for _ in names)
                    cols = ", ".join(f'"{c}"' for c in names)
                    db.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})",
                                   [tuple(r[c] for c in names) for r in rows])
        return copies * self.orders


def template(workdir: Path) -> Template:
    """Run the default replay once into an empty ledger; its rows are the history's template."""
    state = workdir / "template"
    measure(state)
    return Template(state / "bot.db")


# -- report --------------------------------------------------------------------------------------

def _ratio(value: float, base: float) -> str:
    return f"{value / base:.2f}x" if base else "-"


def rows(results: dict[int, dict[str, Any]]) -> Iterator[str]:
    base = results.get(0)
    yield (f"{'history orders':>15} {'start s':>8} {'run s':>7} {'ms/signal':>10} {'RSS MB':>7}   "
           "ratios to empty: start run per-signal RSS")
    for size, r in sorted(results.items()):
        per = r["run"] / max(r["signals"], 1) * 1000
        line = f"{size:>15,} {r['start']:>8.2f} {r['run']:>7.2f} {per:>10.1f} {r['rss_mb']:>7.0f}"
        if base is not None:
            bper = base["run"] / max(base["signals"], 1) * 1000
            line += (f"   {_ratio(r['start'], base['start'])} {_ratio(r['run'], base['run'])} "
                     f"{_ratio(per, bper)} {_ratio(r['rss_mb'], base['rss_mb'])}")
        yield line


def verdict(results: dict[int, dict[str, Any]]) -> str:
    base, top = results.get(0), results[max(results)]
    checks = [f"start-up {top['start']:.2f} s (<= {GOAL_START:g})", f"peak RSS {top['rss_mb']:.0f} MB (<= {GOAL_RSS_MB:g})"]
    ok = top["start"] <= GOAL_START and top["rss_mb"] <= GOAL_RSS_MB
    if base is not None:
        run_ratio = top["run"] / base["run"]
        per_ratio = (top["run"] / max(top["signals"], 1)) / (base["run"] / max(base["signals"], 1))
        checks += [f"run {run_ratio:.2f}x", f"per-signal {per_ratio:.2f}x (<= {GOAL_RATIO:g}x of empty)"]
        ok = ok and run_ratio <= GOAL_RATIO and per_ratio <= GOAL_RATIO
    return f"goal at {max(results):,} orders: {'MET' if ok else 'NOT MET'}: " + ", ".join(checks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=None, help="history sizes in orders, comma-separated (default "
                        f"{','.join(map(str, SIZES))})")
    parser.add_argument("--quick", action="store_true", help=f"sizes {','.join(map(str, QUICK_SIZES))}")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else list(QUICK_SIZES if args.quick else SIZES)
    with tempfile.TemporaryDirectory(prefix="ledger-history-") as tmp:
        workdir = Path(tmp)
        tpl = template(workdir)
        print(f"template: the default replay's ledger, {tpl.orders} orders; one copy per {tpl.orders} history orders")
        results: dict[int, dict[str, Any]] = {}
        for size in sizes:
            state = workdir / f"h{size}"
            state.mkdir()
            began = time.perf_counter()
            held = tpl.fill(state / "bot.db", size) if size else 0
            filled = time.perf_counter() - began
            results[held] = r = measure(state)
            print(f"{held:,} history orders (filled in {filled:.1f} s): events {r['events']}, signals {r['signals']}, "
                  f"orders {r['orders']}, settled {r['settled']}", flush=True)
        print()
        for line in rows(results):
            print(line)
        print(verdict(results))


if __name__ == "__main__":
    main()
