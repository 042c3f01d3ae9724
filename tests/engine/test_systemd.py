"""Under systemd (Type=notify, WatchdogSec) the bot says READY=1 once it trades, feeds the
watchdog while its loop turns, and says STOPPING=1 on shutdown (bot/engine/systemd.py): checked
with a real `bot run` talking to a unix datagram socket, as systemd's NOTIFY_SOCKET is."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from bot.engine import systemd
from tests.engine.conftest import run_bot, write_config


@pytest.fixture
def notify_socket(tmp_path: Path) -> socket.socket:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0)
    yield sock
    sock.close()


def _received(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_a_run_under_systemd_says_ready_feeds_the_watchdog_and_says_stopping(
        tmp_path: Path, notify_socket: socket.socket) -> None:
    config = write_config(tmp_path)
    done = run_bot("run", "-c", str(config), cwd=tmp_path, timeout=180,
                   env={"NOTIFY_SOCKET": notify_socket.getsockname(), "WATCHDOG_USEC": "200000"})
    assert done.returncode == 0, done.stderr[-2000:]
    messages = _received(notify_socket)
    assert messages[0] == "READY=1"
    assert messages.count("STOPPING=1") == 1
    assert set(messages[messages.index("STOPPING=1"):]) <= {"STOPPING=1", "WATCHDOG=1"}  # fed while it stops
    assert "WATCHDOG=1" in messages  # every 0.1 s of wall time during the replay


def test_without_systemd_nothing_is_sent_and_the_watchdog_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert systemd.notify("READY=1") is False
    assert systemd.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))  # meant for another process
    assert systemd.watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval() is not None and systemd.watchdog_interval().total_seconds() == 15
