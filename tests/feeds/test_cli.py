"""`bot feeds` commands against the local BoltOdds server started by `serve-boltodds`."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from bot.feeds.cli import app

from .conftest import BOLT_SAMPLES


@pytest.fixture
def served(tmp_path: object) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-c", "from bot.feeds.cli import app; app()", "serve-boltodds", str(BOLT_SAMPLES),
         "--port", str(port), "--key", "k", "--interval", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while True:  # a safety limit for start-up, not a timing assertion
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/api"
    proc.terminate()
    proc.wait(10)


def test_discovery_commands(served: str, tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    env = {"BOLTODDS_API_KEY": "k", "COLUMNS": "250"}
    monkeypatch.chdir(str(tmp_path))  # no config.yaml here: the key and URL come from env / options
    info = runner.invoke(app, ["get-info", "--rest-url", served, "--json"], env=env)
    assert info.exit_code == 0, info.output
    assert json.loads(info.output)["sportsbooks"] == ["bodog", "bovada", "draftkings", "neobet"]
    games = runner.invoke(app, ["get-games", "--rest-url", served, "--sports", "NFL"], env=env)
    assert games.exit_code == 0 and "Chicago Bears vs Minnesota Vikings" in games.output
    markets = runner.invoke(app, ["get-markets", "--rest-url", served, "--sportsbooks", "draftkings", "--json"], env=env)
    assert "Moneyline" in json.loads(markets.output)["draftkings"]["NFL"]
    denied = runner.invoke(app, ["get-info", "--rest-url", served, "--key", "wrong"])
    assert denied.exit_code == 1 and "HTTP 401" in denied.output
    missing = runner.invoke(app, ["get-info", "--rest-url", served], env={"BOLTODDS_API_KEY": ""})
    assert missing.exit_code != 0
