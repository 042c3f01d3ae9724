"""`bot feeds serve-olympus`: the local Olympus server as a process, as an operator runs it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.engine.conftest import bot_env

DATA = Path(__file__).parents[1] / "data" / "olympus" / "recorded.json"
E1 = "#AC#B12#C20426855#D19#E27164341#F19#"


def test_serve_olympus_answers_the_protocol_and_sigusr1_expires_sessions() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "bot", "feeds", "serve-olympus", str(DATA), "--port", str(port),
                             "--key", "k"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=bot_env(), text=True)
    try:
        deadline = time.monotonic() + 20
        while True:  # a safety limit for start-up, not a timing assertion
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": "k"}) as client:
            assert client.post("/session/start", json={}, headers={"X-API-Key": "wrong"}).status_code == 401
            sid = client.post("/session/start", json={"userAgent": "UA"}).json()["sessionId"]
            assert client.post("/matchmarkets/markets", json={"sessionId": sid, "pd": E1}).status_code == 200
            os.kill(proc.pid, signal.SIGUSR1)
            deadline = time.monotonic() + 10
            while (status := client.get("/session/status", params={"sessionId": sid}).status_code) == 200:
                assert time.monotonic() < deadline, "SIGUSR1 did not expire the session"
                time.sleep(0.02)
            assert status == 401
    finally:
        proc.terminate()
        proc.wait(10)
