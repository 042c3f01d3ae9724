"""Helpers for running the real `bot` command on a config written into a temporary folder, and for
waiting on what a running bot prints (never on a file appearing, never a fixed sleep)."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest
import yaml

ROOT = Path(__file__).parents[2]
DATA = ROOT / "bot" / "data"
REPLAY = DATA / "nfl_raw_snapshots_2025-11-16.jsonl.gz"
RESULTS = DATA / "nfl_results_2025-11-16.csv"
READY = "engine started: mode="  # logged once the ledger is migrated and reconciled


def ledger_rows(db: Path, sql: str) -> list[tuple]:
    """The rows `sql` returns on the SQLite ledger at `db` (read beside a running bot)."""
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def bot_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BOT_")} | (extra or {})


def run_bot(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True,
                          env=bot_env(env), cwd=cwd, timeout=timeout, check=False)


def write_config(folder: Path, name: str = "config.yaml", **changes: Any) -> Path:
    """The default config.yaml with absolute data paths, a private state dir and `changes`
    merged in (one level deep)."""
    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    cfg["feeds"]["replay"]["path"] = str(REPLAY)
    cfg["settlement"]["nfl_results"] = str(RESULTS)
    cfg["state_dir"] = str(folder / "state")
    cfg["logging"]["progress"] = False
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    path = folder / name
    path.write_text(yaml.safe_dump(cfg))
    return path


class BotProcess:
    """`bot <args>` in a subprocess; its stderr (the console log) is read line by line on a thread,
    so a test waits for the line that marks the event it needs. Killed on exit if still running."""

    def __init__(self, *args: str, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "bot", *args], cwd=cwd, env=bot_env(env),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def wait_for_line(self, pattern: str, *, after: int = 0, timeout: float = 60) -> int:
        """Index of the first line from `after` on matching the regex `pattern`.

        Raises AssertionError (with the log's tail) when the process ends or `timeout` passes first.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        index = after
        with self._changed:
            while True:
                while index < len(self.lines):
                    if regex.search(self.lines[index]):
                        return index
                    index += 1
                left = deadline - time.monotonic()
                if self._ended or left <= 0:
                    why = "bot exited" if self._ended else f"not within {timeout:g} s"
                    raise AssertionError(f"no line matching {pattern!r} ({why}):\n{self.tail()}")
                self._changed.wait(left)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.lines[-lines:])

    def wait(self, timeout: float) -> int:
        """The exit code; the reader has seen every line by then."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout)
        return code

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait(timeout=10)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
