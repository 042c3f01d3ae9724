"""`bot backtest` with lays (the exchange strategy on a recorded Betfair cricket MATCH_ODDS market,
tests/data/betfair_stream/): every lay gets its closing line, at the exchange's last pre-start
available-to-lay price, with the layer's CLV (1 - placed price x closing fair probability;
bot/market/closing.py), checked against the board rebuilt here from the reader's own batches."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from bot.feeds.history.betfair import BetfairStreamReader
from bot.types import OddsUpdate
from tests.engine.conftest import run_bot

ROOT = Path(__file__).resolve().parents[2]
MARKET = ROOT / "tests" / "data" / "betfair_stream" / "1.200806927.gz"


def last_before_kickoff() -> dict[str, OddsUpdate]:
    """Selection key -> its last update before kickoff (the close, staleness ignored)."""
    last: dict[str, OddsUpdate] = {}
    for batch in BetfairStreamReader(MARKET).batches():
        for update in batch.updates:
            if batch.received_at < update.selection.fixture.start_time:
                last[update.selection.key] = update
    return last


def test_lays_get_the_layers_clv_at_the_exchanges_closing_lay_price(tmp_path: Path) -> None:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["strategies"] = [{"name": "ex", "path": "exchange", "params": {"min_edge": 0.02}}]
    config["risk"].update(block_while_in_flight=False)
    config["feeds"]["stale_after_seconds"] = 10**9
    config["settlement"] = {"unresolved": "hold"}
    config["logging"] = {"level": "WARNING", "json_file": False, "progress": False}
    config["clv"] = {"reference_books": [], "devig": "multiplicative"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    out = tmp_path / "out"
    done = run_bot("backtest", str(MARKET), "--config", str(tmp_path / "config.yaml"), "--json", "--out", str(out),
                   cwd=tmp_path, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]

    con = sqlite3.connect(out / "ledger" / "bot.db")
    rows = con.execute("SELECT o.selection, o.back, b.placed_price, b.closing_price, b.closing_probability, b.clv "
                       "FROM bets b JOIN orders o ON o.request_uuid = b.request_uuid").fetchall()
    con.close()
    lays = [r for r in rows if not r[1]]
    assert len(lays) >= 2  # the recording holds lays worth the check

    close = last_before_kickoff()
    backs = [u.price for u in close.values()]
    assert len(backs) == 2 and all(p is not None for p in backs)  # a complete two-runner board
    implied = {key: 1 / u.price for key, u in close.items() if u.price is not None}
    fair = {key: q / sum(implied.values()) for key, q in implied.items()}
    for selection, _, placed, closing_price, probability, clv in lays:
        ladder = close[selection].ladder
        assert ladder is not None and ladder.best_lay is not None
        assert closing_price == ladder.best_lay[0]  # the lay side, not the back price
        assert probability == pytest.approx(fair[selection], abs=1e-12)
        assert clv == pytest.approx(1 - placed * fair[selection], abs=1e-12)  # the layer's, not a backer's
    report = json.loads(done.stdout)
    (side,) = [g for g in report["breakdowns"]["side"] if g["group"] == "lay"]
    assert side["n_with_close"] == len(lays)
    assert side["clv_mean"] == pytest.approx(sum(1 - r[2] * fair[r[0]] for r in lays) / len(lays), abs=1e-9)
