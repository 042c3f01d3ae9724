"""The PostgreSQL fixtures start a real, private server: not the machine's own on 5432, a fresh
database per test, advisory locks that exclude across sessions (the bot's single-runner guard)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from tests import postgres
from tests.postgres import PostgresServer


def libpq(url: str) -> str:
    """SQLAlchemy URL -> libpq URI that psycopg.connect takes."""
    assert url.startswith("postgresql+psycopg://"), url
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def test_server_is_real_and_private(pg_server: PostgresServer, pg_url: str) -> None:
    assert pg_server.port != 5432
    assert pg_url.startswith(f"postgresql+psycopg://postgres@127.0.0.1:{pg_server.port}/t_")
    with psycopg.connect(libpq(pg_url)) as conn:
        version, port, datadir, addr = conn.execute(
            "SELECT version(), current_setting('port'), current_setting('data_directory'), "
            "host(inet_server_addr())").fetchone() or ("", "", "", "")
    assert version.startswith("PostgreSQL ")
    assert int(port) == pg_server.port
    assert Path(datadir) == pg_server.data  # our throwaway cluster, not the system one
    assert addr == "127.0.0.1"


def test_server_runs_unprivileged_when_root(pg_server: PostgresServer) -> None:
    """PostgreSQL will not run as root: the postmaster's user must be the one we switched to."""
    pid = int((pg_server.data / "postmaster.pid").read_text().splitlines()[0])
    uid = os.stat(f"/proc/{pid}").st_uid
    assert uid == os.geteuid() if os.geteuid() != 0 else uid != 0


def test_pg_url_is_a_working_sqlalchemy_url(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT current_database()")).scalar_one() == pg_url.rsplit("/", 1)[1]
    finally:
        engine.dispose()


@pytest.mark.parametrize("turn", [1, 2])
def test_each_test_gets_an_empty_database(pg_url: str, turn: int) -> None:
    """Both turns find no table, then leave one behind: a shared database fails the second."""
    with psycopg.connect(libpq(pg_url), autocommit=True) as conn:
        tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
        assert tables == (0,)
        conn.execute("CREATE TABLE leftover (turn int)")


def test_two_databases_are_isolated(pg_server: PostgresServer, pg_url: str) -> None:
    other_name, other_url = pg_server.fresh_database()
    try:
        assert other_url != pg_url
        with psycopg.connect(libpq(pg_url), autocommit=True) as one, \
                psycopg.connect(libpq(other_url), autocommit=True) as two:
            one.execute("CREATE TABLE only_here (x int)")
            assert one.execute("SELECT to_regclass('public.only_here') IS NOT NULL").fetchone() == (True,)
            assert two.execute("SELECT to_regclass('public.only_here') IS NOT NULL").fetchone() == (False,)
    finally:
        pg_server.drop_database(other_name)


def test_advisory_lock_excludes_a_second_session(pg_url: str) -> None:
    with psycopg.connect(libpq(pg_url), autocommit=True) as holder, \
            psycopg.connect(libpq(pg_url), autocommit=True) as rival:
        assert holder.execute("SELECT pg_try_advisory_lock(4242)").fetchone() == (True,)
        assert rival.execute("SELECT pg_try_advisory_lock(4242)").fetchone() == (False,)
        assert rival.execute("SELECT pg_try_advisory_lock(4243)").fetchone() == (True,)  # other keys are free
        assert holder.execute("SELECT pg_advisory_unlock(4242)").fetchone() == (True,)
        assert rival.execute("SELECT pg_try_advisory_lock(4242)").fetchone() == (True,)


def test_advisory_lock_is_released_when_the_holder_disconnects(pg_url: str) -> None:
    """A crashed runner must not keep the lock: closing its session frees it."""
    with psycopg.connect(libpq(pg_url), autocommit=True) as rival:
        with psycopg.connect(libpq(pg_url), autocommit=True) as holder:
            assert holder.execute("SELECT pg_try_advisory_lock(7)").fetchone() == (True,)
            assert rival.execute("SELECT pg_try_advisory_lock(7)").fetchone() == (False,)
        # The server ends the holder's backend asynchronously: poll, bounded, for the release.
        deadline = time.monotonic() + 10
        while rival.execute("SELECT pg_try_advisory_lock(7)").fetchone() != (True,):
            assert time.monotonic() < deadline, "lock still held 10 s after the holder disconnected"
            time.sleep(0.01)


def test_stop_ends_the_server_and_removes_its_folder() -> None:
    server = PostgresServer()
    server.start()
    root, dsn = server.root, server.dsn()
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    server.stop()
    assert not root.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=5)
    server.stop()  # idempotent


def test_find_bindir_prefers_a_real_bindir() -> None:
    bindir = postgres.find_bindir()
    assert bindir is not None
    assert (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file()
    assert (bindir / "pg_ctl").resolve().parent == bindir.resolve()  # the binaries, not links to them


def test_missing_binaries_fail_in_ci_and_skip_by_hand(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "find_bindir", lambda: None)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(RuntimeError, match="apt-get install postgresql"):
        PostgresServer()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="apt-get install postgresql"):
        PostgresServer()
