"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from tests.bus.conftest import Broker


@pytest.fixture
def warnings() -> Iterator[list[str]]:
    """The messages logged at WARNING or above during the test."""
    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="WARNING")
    yield lines
    logger.remove(sink)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A real Mosquitto on a free loopback port, for this test only."""
    b = Broker(tmp_path)
    b.start()
    yield b
    b.kill()
