"""The bundled replay in live mode against the local ABP server (real HTTP + WebSocket on
loopback) makes the same decisions and the same orders as in paper mode; without the mapping
file every signal is rejected as UNMAPPED and nothing reaches the server."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from bot.sim.abp_server import LocalAbpServer
from tests.engine.conftest import ROOT, bot_env, ledger_rows, run_bot, write_config

MAPPING = ROOT / "tests" / "data" / "mapping_nfl_2025-11-16.yaml"
DECISIONS = ("select s.selection, s.side, s.stake, s.min_price, d.verdict, d.reason, d.approved_stake "
             "from decisions d join signals s using(signal_id) order by d.id")
ORDERS = "select selection, back, stake, order_price, bookmakers from orders order by id"


async def _run_live(folder: Path, mapping: Path | None, server: LocalAbpServer, base_url: str) -> int:
    cfg = write_config(folder, mode="live", mapping={"file": str(mapping) if mapping else None,
                                                      "use_abp_markets": False})
    env = bot_env({"BOT_ABP__API_KEY": server.api_key, "BOT_ABP__BASE_URL": base_url,
                   "BOT_ABP__WS_URL": base_url.replace("http", "ws") + "/ws",
                   "BOT_ABP__REQUESTS_PER_SECOND": "1000"})
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", "-c", str(cfg), cwd=folder,
                                                env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=240)
    assert proc.returncode == 0, err.decode()[-3000:]
    return proc.returncode


async def test_live_mode_matches_paper_and_unmapped_is_rejected(tmp_path: Path) -> None:
    paper_dir = tmp_path / "paper"
    paper_dir.mkdir()
    paper_run = await asyncio.to_thread(run_bot, "run", "-c", str(write_config(paper_dir)), cwd=paper_dir)
    assert paper_run.returncode == 0, paper_run.stderr[-3000:]
    paper_db = paper_dir / "state" / "bot.db"

    server = LocalAbpServer(api_key="local-test-key")
    base_url = await server.start()
    try:
        live_dir = tmp_path / "live"
        live_dir.mkdir()
        await _run_live(live_dir, MAPPING, server, base_url)
        live_db = live_dir / "state" / "bot.db"
        paper_orders = ledger_rows(paper_db, ORDERS)
        assert paper_orders
        assert ledger_rows(live_db, DECISIONS) == ledger_rows(paper_db, DECISIONS)
        assert ledger_rows(live_db, ORDERS) == paper_orders
        # The server received each of them exactly once, with the mapped instrument.
        placed = server.venue.all_orders()
        live_uuids = {u for (u,) in ledger_rows(live_db, "select request_uuid from orders")}
        assert sorted(o["requestUuid"] for o in placed) == sorted(live_uuids)
        assert all(o["fixtureId"].startswith("id140000319") for o in placed)
        assert ledger_rows(live_db, "select count(*) from orders where fixture_id is null") == [(0,)]

        unmapped_dir = tmp_path / "unmapped"
        unmapped_dir.mkdir()
        await _run_live(unmapped_dir, None, server, base_url)
        unmapped_db = unmapped_dir / "state" / "bot.db"
        verdicts = ledger_rows(unmapped_db, "select verdict, reason, count(*) from decisions group by verdict, reason")
        signals = ledger_rows(unmapped_db, "select count(*) from signals")[0][0]
        assert signals == ledger_rows(paper_db, "select count(*) from signals")[0][0] > 0
        assert verdicts == [("REJECTED", "UNMAPPED", signals)]
        assert ledger_rows(unmapped_db, "select count(*) from orders") == [(0,)]
        assert len(server.venue.all_orders()) == len(placed)  # nothing new reached the server
    finally:
        await server.stop()
