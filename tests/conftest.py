"""Fixtures shared by every test folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from loguru import logger

from tests.bus.conftest import Broker
from tests.postgres import PostgresServer  # a real PostgreSQL: one throwaway cluster per run, a database per test


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



@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL on a free loopback port, started once for the run (~1 s) and
    removed at its end. Skips when run by hand without PostgreSQL; fails in CI."""
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """SQLAlchemy URL (`postgresql+psycopg://...`) of a fresh, empty database for this test only;
    dropped afterwards, cutting any session the test left open."""
    name, url = pg_server.fresh_database()
    yield url
    pg_server.drop_database(name)
