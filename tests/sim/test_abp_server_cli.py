"""`bot abp serve` passes its strictness options and faults to the local ABP server (a real
subprocess on a loopback port)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SERVE = [sys.executable, "-m", "bot.execution.cli", "serve", "--port", "0", "--api-key", "cli-key"]


def test_serve_options_reach_the_server() -> None:
    # Old: `serve` had none of these options (and offered the non-ABP book "paper" by default).
    args = ["--bookmakers", "pinnacle,betcris,sharpbet", "--allowed-bookmakers", "betcris,sharpbet",
            "--book-currency", "betcris=EUR", "--rate", "EUR=0.92", "--book-max-stake", "sharpbet=50",
            "--duplicate-reply", "decline", "--no-status", "--resend-seconds", "5"]
    proc = subprocess.Popen(SERVE + args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, line
        url = line.split("listening on ")[1].split()[0]
        with httpx.Client(base_url=url, headers={"x-api-key": "cli-key"}, timeout=5) as http:
            books = {b["bookmaker"]: b["maxStake"] for b in http.get("/bookmakers").json()}
            assert books == {"betcris": 1000.0, "sharpbet": 50.0}
            accounts = {a["bookmaker"]: a["currencyInfo"] for a in http.get("/accounts").json()}
            assert accounts["betcris"] == {"currency": "EUR", "currencyValue": 0.92}
            assert http.get("/status").status_code == 404
            assert http.get("/_admin/faults").json()["duplicate_reply"] == "decline"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_refuses_a_malformed_pair() -> None:
    # Old: no such option; a malformed value must stop start-up with a message, not serve half-configured.
    out = subprocess.run(SERVE + ["--rate", "EUR"], check=False, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "expected KEY=VALUE" in out.stderr
