"""Three `bot run` processes on one PostgreSQL ledger (bot/risk/shared.py, docs/operations.md
"Several instances"), each flooding risk with concurrent signals on the same two fixtures for
a minute and more (the NFL Sunday recording at 800x, tests/operator/strategies/flood.py, on the
Sunday and Monday night games, whose prices move all through the recording).

The check is independent of the bot's code: deferred constraint triggers installed in the
database run at the commit of every transaction that writes an order or a bet, compute the
worst-case exposure of all instances in SQL (open bets, plus the unfilled part of open orders)
and log it, with whether trading was HALTED and whether an order was committed un-declined
after the halt. The test then reads the log.
"""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from bot.ledger.store import Ledger
from tests.bus.conftest import free_port
from tests.engine.conftest import ROOT, BotProcess, write_config

pytestmark = pytest.mark.timeout(300)

FIXTURE_CAP = Decimal(200)
TOTAL_CAP = Decimal(300)  # below two fixtures' caps: both limits bind
TOKEN = "shared-ledger-test-token"

# Exposure as docs/architecture.md "Risk" defines it, written again in SQL: back bets only here
# (the flood strategy backs), so an item's worst-case loss is its stake. An order's unfilled part
# is its stake less what its bets took (its `filled_stake` row may lag its bets by a group commit).
CHECK = """
CREATE TABLE exposure_log (id bigserial PRIMARY KEY, total numeric NOT NULL, fixture text,
                           fixture_amount numeric NOT NULL, halted boolean NOT NULL);
CREATE TABLE after_halt (request_uuid text, status text, instance text);
CREATE FUNCTION log_exposure() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  tot numeric; fx text; fx_amount numeric; is_halted boolean;
BEGIN
  IF current_setting('exposure.tx', true) = txid_current()::text THEN RETURN NULL; END IF;
  PERFORM set_config('exposure.tx', txid_current()::text, true);  -- once per transaction
  CREATE TEMP TABLE IF NOT EXISTS items (fixture text, amount numeric) ON COMMIT DELETE ROWS;
  INSERT INTO items
    SELECT o.fixture, greatest(o.stake::numeric - greatest(o.filled_stake::numeric, coalesce(
             (SELECT sum(b.placed_stake::numeric) FROM bets b WHERE b.request_uuid = o.request_uuid
              AND b.bet_status IN ('PENDING', 'PLACED', 'CONFIRMED')), 0)), 0)
    FROM orders o WHERE o.status IN ('INTENT', 'SENT', 'UNKNOWN', 'PENDING', 'PROCESSING', 'PARTIALLY_FILLED')
    UNION ALL
    SELECT o.fixture, b.placed_stake::numeric FROM bets b JOIN orders o ON o.request_uuid = b.request_uuid
    WHERE b.bet_status IN ('PENDING', 'PLACED', 'CONFIRMED') AND b.settlement_status = 'UNSETTLED';
  SELECT coalesce(sum(amount), 0) INTO tot FROM items;
  SELECT fixture, sum(amount) INTO fx, fx_amount FROM items GROUP BY fixture ORDER BY 2 DESC LIMIT 1;
  SELECT coalesce((SELECT value->>'state' FROM state WHERE key = 'risk'), '') = 'HALTED' INTO is_halted;
  INSERT INTO exposure_log (total, fixture, fixture_amount, halted) VALUES (tot, fx, coalesce(fx_amount, 0), is_halted);
  RETURN NULL;
END $$;
CREATE FUNCTION log_after_halt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status <> 'DECLINED' AND coalesce((SELECT value->>'state' FROM state WHERE key = 'risk'), '') = 'HALTED' THEN
    INSERT INTO after_halt VALUES (NEW.request_uuid, NEW.status, NEW.instance);
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER orders_exposure AFTER INSERT OR UPDATE ON orders
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION log_exposure();
CREATE CONSTRAINT TRIGGER bets_exposure AFTER INSERT OR UPDATE ON bets
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION log_exposure();
CREATE CONSTRAINT TRIGGER orders_after_halt AFTER INSERT ON orders
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION log_after_halt();
"""


def _config(folder: Path, name: str, url: str, web_port: int | None) -> Path:
    folder.mkdir()
    return write_config(
        folder, instance=name, ledger={"url": url},
        feeds={"replay": {"path": str(ROOT / "bot" / "data" / "nfl_raw_snapshots_2025-11-16.jsonl.gz"),
                          "format": "auto", "odds_format": "american", "speed": 800}},
        strategy_dirs=[str(ROOT / "tests" / "operator" / "strategies")],
        strategies=[{"name": f"flood_{name}", "path": "flood.py:FloodStrategy",
                     "params": {"kickoff_from": "2025-11-17T00:00:00Z", "kickoff_to": "2025-11-19T00:00:00Z",
                                "per_update": 2, "stake": 20}}],
        risk={"max_stake": 100, "min_price": 1.2, "max_price": 10.0, "max_exposure_selection": 1000,
              "max_exposure_fixture": int(FIXTURE_CAP), "max_exposure_bookmaker": 1000,
              "max_exposure_strategy": 1000, "max_exposure_total": int(TOTAL_CAP),
              "max_orders_per_window": 100000, "duplicate_window_seconds": 0, "block_while_in_flight": False},
        # all or nothing, and a book takes 15 per selection: the flood's small orders fill, the
        # others wait for a price and expire, freeing their exposure
        execution={"accept_partial_stake": False},
        paper={"default_max_stake": 15},
        web={"enabled": web_port is not None, "port": web_port or 8080},
    )


def test_three_instances_keep_the_global_caps_and_stop_together_on_one_halt(tmp_path: Path, pg_url: str) -> None:
    Ledger(pg_url).close()  # the schema, so the checks can be installed before anyone trades
    db = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with db.connect() as conn:
        conn.execute(text(CHECK))
    port = free_port()
    configs = [_config(tmp_path / n, n, pg_url, port if n == "bot2" else None) for n in ("bot1", "bot2", "bot3")]
    env = {"BOT_WEB__TOKEN": TOKEN}
    started = time.monotonic()
    bots = [BotProcess("run", "--config", str(c), cwd=c.parent, env=env) for c in configs]
    try:
        for bot in bots:
            bot.wait_for_line("engine started: mode=paper", timeout=60)

        def log_figure(sql: str) -> Decimal:
            with db.connect() as conn:
                return Decimal(conn.execute(text(sql)).scalar() or 0)
        # Halt from bot2's API once the caps have been reached and 60 s have run, while all
        # three are still firing (the recording lasts 73 s at 800x).
        deadline = started + 150
        while (time.monotonic() - started < 60 or log_figure("SELECT max(total) FROM exposure_log") < TOTAL_CAP * 8 / 10):
            assert time.monotonic() < deadline, "the instances never filled the caps:\n" + bots[0].tail()
            assert all(b.proc.poll() is None for b in bots), "an instance ended before the halt"
            time.sleep(0.5)
        orders_before = log_figure("SELECT count(*) FROM orders")
        reply = httpx.post(f"http://127.0.0.1:{port}/api/halt", headers={"Authorization": f"Bearer {TOKEN}"},
                           json={"reason": "test: halt from bot2"}, timeout=10)
        assert reply.status_code == 200, reply.text
        for bot in bots:  # each instance adopts the one trading state
            bot.wait_for_line("trading HALTED", timeout=30)
        codes = [bot.wait(timeout=150) for bot in bots]
    finally:
        for bot in bots:
            bot.__exit__(None, None, None)
    assert codes == [0, 0, 0], "\n\n".join(b.tail() for b in bots)

    with db.connect() as conn:
        checks, max_total, max_fixture = conn.execute(text(
            "SELECT count(*), max(total), max(fixture_amount) FROM exposure_log")).one()
        over = conn.execute(text(
            "SELECT total, fixture, fixture_amount FROM exposure_log WHERE total > :t OR fixture_amount > :f LIMIT 5"),
            {"t": TOTAL_CAP, "f": FIXTURE_CAP}).all()
        after_halt = conn.execute(text("SELECT * FROM after_halt")).all()
        by_instance = dict(conn.execute(text("SELECT instance, count(*) FROM orders GROUP BY instance")).all())
        global_refusals = conn.execute(text(
            "SELECT count(*) FROM orders WHERE status = 'DECLINED' AND status_reason LIKE 'not sent: global EXPOSURE%'"
        )).scalar()
        twice = conn.execute(text("SELECT signal_id FROM orders GROUP BY signal_id HAVING count(*) > 1")).all()
        overfilled = conn.execute(text(
            "SELECT o.request_uuid FROM orders o JOIN bets b ON b.request_uuid = o.request_uuid "
            "GROUP BY o.request_uuid, o.stake HAVING sum(b.placed_stake::numeric) > o.stake::numeric")).all()
        halted_orders = conn.execute(text(
            "SELECT count(*) FROM orders WHERE status_reason LIKE 'not sent: global TRADING_HALTED%'")).scalar()
        halted_decisions = dict(conn.execute(text(
            "SELECT strategy, count(*) FROM decisions WHERE reason = 'TRADING_HALTED' GROUP BY strategy")).all())
    db.dispose()

    # not a vacuous run: every instance placed, the caps were reached, commits were checked
    assert set(by_instance) == {"bot1", "bot2", "bot3"} and min(by_instance.values()) >= 10, by_instance
    assert checks >= 100, checks
    assert max_total >= TOTAL_CAP * 8 / 10 and max_fixture >= FIXTURE_CAP * 8 / 10, (max_total, max_fixture)
    assert global_refusals > 0, "the cross-instance check never had to refuse: the run did not contend"
    # the caps held at every commit, across the three processes
    assert over == [], f"exposure over the caps after a commit: {over}"
    assert max_total <= TOTAL_CAP and max_fixture <= FIXTURE_CAP
    # no order twice: one order per signal, no order filled beyond its stake
    assert twice == [] and overfilled == []
    # the halt from bot2 stopped all three: no order committed un-declined after it, and each
    # instance's own risk rejected its later signals as TRADING_HALTED
    assert after_halt == []
    assert set(halted_decisions) == {"flood_bot1", "flood_bot2", "flood_bot3"}, (halted_decisions, halted_orders)
    assert orders_before > 0
