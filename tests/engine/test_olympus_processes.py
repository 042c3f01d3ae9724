"""`bot run` on the Olympus feed against `bot feeds serve-olympus`, two processes as an operator
runs them: recorded Bet365 records become paper orders, and a SIGINT stops the bot cleanly."""

from __future__ import annotations

import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.engine.conftest import BotProcess, bot_env

DATA = Path(__file__).parents[1] / "data" / "olympus" / "recorded.json"
KEY = "olympus-process-key"
EVENTS = ["#AC#B12#C20426855#D19#E27164341#F19#", "#AC#B12#C20426855#D19#E27164352#F19#",
          "#AC#B1#C1#D8#E27180533#F3#"]


def _orders(db: Path) -> list[tuple[float, str, str]]:
    if not db.is_file():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return list(conn.execute("SELECT order_price, status, bookmakers FROM orders ORDER BY order_price"))
    except sqlite3.OperationalError:  # the bot has not created the table yet
        return []


def test_bot_run_against_serve_olympus_places_paper_orders(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "bot", "feeds", "serve-olympus", str(DATA), "--port", str(port),
                               "--key", KEY], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, env=bot_env())
    try:
        deadline = time.monotonic() + 20
        while True:  # a safety limit for start-up, not a timing assertion
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "serve-olympus did not start"
                time.sleep(0.05)
        (tmp_path / "config.yaml").write_text(yaml.safe_dump({
            "mode": "paper", "state_dir": "state", "logging": {"json_file": False, "progress": False},
            "feeds": {"olympus": {"base_url": f"http://127.0.0.1:{port}", "api_key": "${OLYMPUS_KEY}",
                                  "poll_seconds": 0.5, "events": [{"pd": pd} for pd in EVENTS]}},
            "strategies": [{"name": "tmpl", "path": "template",
                            "params": {"min_price": 2.1, "stake": 5, "markets": ["moneyline", "1x2"]}}],
        }))
        db = tmp_path / "state" / "bot.db"
        with BotProcess("run", "-c", str(tmp_path / "config.yaml"), cwd=tmp_path, env={"OLYMPUS_KEY": KEY}) as bot:
            bot.wait_for_line("engine started", timeout=60)
            deadline = time.monotonic() + 60
            while not ((got := _orders(db)) and len(got) >= 3 and all(o[1] == "FILLED" for o in got)):
                assert bot.proc.poll() is None, bot.tail()
                assert time.monotonic() < deadline, f"no 3 filled orders: {got}\n{bot.tail()}"
                time.sleep(0.2)
            bot.proc.send_signal(signal.SIGINT)
            assert bot.wait(timeout=60) == 0, bot.tail()
            assert not any(KEY in line for line in bot.lines)  # the key is masked everywhere
    finally:
        server.terminate()
        server.wait(10)
    # Broncos 6/5 (2.2), Draw 7/2 (4.5), Tottenham 6/1 (7.0): the moneyline / 1x2 prices >= 2.1
    assert [(price, book) for price, _, book in _orders(db)] == [(2.2, "bet365"), (4.5, "bet365"), (7.0, "bet365")]
