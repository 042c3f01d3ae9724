"""Under systemd (Type=notify, WatchdogSec) the bot says READY=1 once it trades, feeds the
watchdog while its loop turns, and says STOPPING=1 on shutdown (bot/engine/systemd.py): checked
with a real `bot run` talking to a unix datagram socket, as systemd's NOTIFY_SOCKET is."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.engine import systemd
from tests.engine.conftest import run_bot, write_config


class Receiver:
    """A NOTIFY_SOCKET that reads as systemd does, while the bot runs (a datagram queue nobody
    reads fills after a few messages)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.messages: list[str] = []
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self._sock.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append(self._sock.recv(4096).decode())
            except TimeoutError:
                continue

    def close(self) -> list[str]:
        self._stop.set()
        self._thread.join()
        self._sock.close()
        return self.messages


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    r = Receiver(tmp_path / "notify.sock")
    yield r
    r.close()


def test_a_run_under_systemd_says_ready_feeds_the_watchdog_and_says_stopping(
        tmp_path: Path, receiver: Receiver) -> None:
    config = write_config(tmp_path)
    done = run_bot("run", "-c", str(config), cwd=tmp_path, timeout=180,
                   env={"NOTIFY_SOCKET": receiver.path, "WATCHDOG_USEC": "200000"})
    assert done.returncode == 0, done.stderr[-2000:]
    messages = receiver.close()
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


def test_a_receiver_that_does_not_read_never_blocks_the_sender(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """systemd busy (its queue full) must not hang the bot: the send fails, is logged, returns."""
    path = tmp_path / "full.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    try:
        results = [systemd.notify("WATCHDOG=1") for _ in range(5000)]  # far past any queue length
    finally:
        sock.close()
    assert results[0] is True and results[-1] is False
