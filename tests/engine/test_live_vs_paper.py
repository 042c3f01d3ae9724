"""The bundled replay in live mode against the local ABP server (real HTTP + WebSocket on
loopback) makes the same decisions and the same orders as in paper mode, naming ABP's bookmaker
slugs through `abp.bookmakers`; without that map the feed's US books are not ABP books, so every
signal is rejected BOOKMAKER_UNAVAILABLE; without the mapping file every signal is rejected as
UNMAPPED. In neither case does anything reach the server."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from bot.execution.bookmakers import ABP_BOOKMAKERS
from bot.sim.abp_server import LocalAbpServer
from tests.engine.conftest import ROOT, bot_env, ledger_rows, run_bot, write_config

MAPPING = ROOT / "tests" / "data" / "mapping_nfl_2025-11-16.yaml"
DECISIONS = ("select s.selection, s.side, s.stake, s.min_price, d.verdict, d.reason, d.approved_stake "
             "from decisions d join signals s using(signal_id) order by d.id")
ORDERS = "select selection, back, stake, order_price, bookmakers from orders order by id"
# The recording's books (The Odds API keys) -> distinct ABP slugs the local server offers.
BOOK_MAP = {"betmgm": "pinnacle", "betonlineag": "betcris", "betrivers": "sharpbet", "betus": "bookmaker.eu",
            "bovada": "cloudbet", "draftkings": "justbet", "fanatics": "singbet", "fanduel": "3et",
            "lowvig": "198bet", "mybookieag": "paradisewager", "williamhill_us": "sports411.ag"}


async def _run_live(folder: Path, mapping: Path | None, server: LocalAbpServer, base_url: str,
                    books: dict[str, str]) -> None:
    abp: dict[str, Any] = {"bookmakers": books, "emergency_wait_seconds": 0.5}
    cfg = write_config(folder, mode="live", abp=abp,
                       mapping={"file": str(mapping) if mapping else None, "use_abp_markets": False})
    env = bot_env({"BOT_ABP__API_KEY": server.api_key, "BOT_ABP__BASE_URL": base_url,
                   "BOT_ABP__WS_URL": base_url.replace("http", "ws") + "/ws",
                   "BOT_ABP__REQUESTS_PER_SECOND": "1000"})
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", "-c", str(cfg), cwd=folder,
                                                env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=240)
    assert proc.returncode == 0, err.decode()[-3000:]


def _rejected_only(db: Path, reason: str, paper_db: Path) -> None:
    verdicts = ledger_rows(db, "select verdict, reason, count(*) from decisions group by verdict, reason")
    signals = ledger_rows(db, "select count(*) from signals")[0][0]
    assert signals == ledger_rows(paper_db, "select count(*) from signals")[0][0] > 0
    assert verdicts == [("REJECTED", reason, signals)]
    assert ledger_rows(db, "select count(*) from orders") == [(0,)]


async def test_live_mode_matches_paper_names_abp_books_and_refuses_the_rest(tmp_path: Path) -> None:
    paper_dir = tmp_path / "paper"
    paper_dir.mkdir()
    paper_run = await asyncio.to_thread(run_bot, "run", "-c", str(write_config(paper_dir)), cwd=paper_dir)
    assert paper_run.returncode == 0, paper_run.stderr[-3000:]
    paper_db = paper_dir / "state" / "bot.db"

    server = LocalAbpServer(api_key="local-test-key", bookmakers=sorted(BOOK_MAP.values()))
    base_url = await server.start()
    try:
        live_dir = tmp_path / "live"
        live_dir.mkdir()
        await _run_live(live_dir, MAPPING, server, base_url, BOOK_MAP)
        live_db = live_dir / "state" / "bot.db"
        paper_orders = ledger_rows(paper_db, ORDERS)
        assert paper_orders
        assert ledger_rows(live_db, DECISIONS) == ledger_rows(paper_db, DECISIONS)
        # Same orders; each names the ABP slug of the paper order's feed book (before: the feed's slug).
        expected = [(*row[:4], ",".join(BOOK_MAP[b] for b in row[4].split(","))) for row in paper_orders]
        assert ledger_rows(live_db, ORDERS) == expected
        # The server received each of them exactly once, with the mapped instrument and ABP books only.
        placed = server.venue.all_orders()
        live_uuids = {u for (u,) in ledger_rows(live_db, "select request_uuid from orders")}
        assert sorted(o["requestUuid"] for o in placed) == sorted(live_uuids)
        assert all(o["fixtureId"].startswith("id140000319") for o in placed)
        assert {b for o in placed for b in o["allowedBookmakers"].split(",")} <= set(ABP_BOOKMAKERS)
        assert ledger_rows(live_db, "select count(*) from orders where fixture_id is null") == [(0,)]

        # No map: The Odds API's US books are not ABP books (before: sent as they were).
        nomap_dir = tmp_path / "nomap"
        nomap_dir.mkdir()
        await _run_live(nomap_dir, MAPPING, server, base_url, {})
        _rejected_only(nomap_dir / "state" / "bot.db", "BOOKMAKER_UNAVAILABLE", paper_db)

        unmapped_dir = tmp_path / "unmapped"
        unmapped_dir.mkdir()
        await _run_live(unmapped_dir, None, server, base_url, BOOK_MAP)
        _rejected_only(unmapped_dir / "state" / "bot.db", "UNMAPPED", paper_db)
        assert len(server.venue.all_orders()) == len(placed)  # nothing new reached the server
    finally:
        await server.stop()
