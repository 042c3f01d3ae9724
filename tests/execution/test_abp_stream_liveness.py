"""AbpStream liveness and emergency state against a scripted ABP WebSocket server on loopback
(docs/reference/abp.md §13.4 keep-alive, §13.2 emergency/status channels, §14 item 6)."""

from __future__ import annotations

from pathlib import Path

from loguru import logger

from bot.execution.abp_stream import AbpStream
from bot.ledger.store import Ledger
from tests.execution.helpers import eventually
from tests.execution.ws_script import Inbox, ScriptedAbp, Session, idle


async def test_silent_server_is_left_and_a_pong_counts_as_life() -> None:
    # Old code connected with ping_interval=None and read with no timeout: the silent first
    # session was never left (one session forever, `eventually` below fails).
    async def silent(session: Session) -> None:
        session.answer_pings = False

    async with ScriptedAbp([silent, idle]) as srv:
        stream = AbpStream(srv.config(ws_dead_after_seconds=0.5, ws_ping_seconds=0.1), None, Inbox())
        await stream.start()
        try:
            await eventually(lambda: len(srv.sessions) == 2, timeout=3)
            first, second = srv.sessions
            assert 0.5 <= second.started - first.started < 1.5  # dead after 0.5 s, then a quick reconnect
            assert len(first.of("ping")) >= 3  # our pings went unanswered
            # the second session only answers our pings: pongs alone keep it alive past dead_after
            await eventually(lambda: len(second.of("ping")) >= 8, timeout=3)
            assert len(srv.sessions) == 2 and stream.logins == 2 and stream.logged_in.is_set()
        finally:
            await stream.stop()


async def test_emergency_unknown_after_login_then_clear_then_set() -> None:
    # Old code left `emergency` None (orders fail closed forever) when no emergency frame came
    # after a login, and ignored `status` frames.
    async with ScriptedAbp([idle]) as srv:
        stream = AbpStream(srv.config(emergency_wait_seconds=0.3, ws_ping_seconds=0.1), None, Inbox())
        infos: list[str] = []
        sink = logger.add(lambda m: infos.append(m.record["message"]), level="INFO")
        await stream.start()
        try:
            first = srv.sessions[0]
            assert stream.logged_in.is_set() and stream.emergency is None  # unknown right after login
            await eventually(lambda: stream.emergency is False, timeout=3)
            assert len(srv.sessions) == 1  # the timer cleared it, not a reconnect
            assert any("no emergency frame within 0.3 s" in line for line in infos)
            await first.data(1, "emergency", "STATUS", {"active": True, "reason": "maintenance", "ts": 1})
            await eventually(lambda: stream.emergency is True)
            await first.close()
            await eventually(lambda: len(srv.sessions) == 2 and stream.logged_in.is_set())
            assert stream.emergency is None  # unknown again after the reconnect
            second = srv.sessions[1]
            await second.data(2, "status", "STATUS", {"status": "degraded", "emergency": {"active": True}})
            await eventually(lambda: stream.emergency is True)
            pings = len(second.of("ping"))
            await eventually(lambda: len(second.of("ping")) >= pings + 5)  # > 0.3 s later
            assert stream.emergency is True  # a known state is not overwritten by the wait timer
            await second.data(3, "status", "STATUS", {"emergency": False})
            await eventually(lambda: stream.emergency is False)
        finally:
            logger.remove(sink)
            await stream.stop()


async def test_status_frame_makes_the_state_known(tmp_path: Path) -> None:
    # Old code ignored `status` frames (state stayed None) and read an emergency frame without
    # `active` as "clear".
    ledger = Ledger(tmp_path / "bot.db")
    async with ScriptedAbp([idle]) as srv:
        stream = AbpStream(srv.config(emergency_wait_seconds=30), ledger, Inbox())
        await stream.start()
        try:
            session = srv.sessions[0]
            await session.data(1, "emergency", "STATUS", {"reason": "no flag"})
            await eventually(lambda: stream.last_seq == 1)
            assert stream.emergency is None  # unreadable: not taken as clear
            assert [e.payload["raw"] for e in ledger.events("ws.bad_frame")] == [{"reason": "no flag"}]
            await session.data(2, "status", "STATUS", {"status": "ok"})
            await eventually(lambda: stream.emergency is False)  # long before the 30 s wait
        finally:
            await stream.stop()
            ledger.close()
