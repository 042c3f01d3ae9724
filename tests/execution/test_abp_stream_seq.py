"""AbpStream seq handling against a scripted ABP WebSocket server on loopback: renumbering, gaps
with `replay`, acks never past a gap, events passed through (docs/reference/abp.md §13.3-13.4)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.execution.abp_stream import HELD_MAX, STATE_KEY, AbpStream
from bot.ledger.store import Ledger
from tests.execution.helpers import eventually
from tests.execution.ws_script import Inbox, ScriptedAbp, Session, idle


def persisted(ledger: Ledger) -> int:
    return (ledger.get_state(STATE_KEY) or {}).get("seq", 0)


async def test_renumbered_seq_after_reconnect_is_delivered_then_resynced(tmp_path: Path) -> None:
    # Old code dropped seq 1 and 2 of the restarted server as duplicates of the seqs it had
    # processed before: "0 of 2 delivered after a renumbering", and no RESYNC.
    ledger = Ledger(tmp_path / "bot.db")
    inbox = Inbox()
    async with ScriptedAbp([idle]) as srv:
        stream = AbpStream(srv.config(), ledger, inbox)
        await stream.start()
        try:
            before = srv.sessions[0]
            await before.data(1, payload={"orderId": 11})
            await before.data(2, payload={"orderId": 12})
            await eventually(lambda: before.acked() == 2)
            await before.close()  # the server restarts; same subscriptionId, numbering from 1
            await eventually(lambda: len(srv.sessions) == 2 and stream.logged_in.is_set())
            after = srv.sessions[1]
            await eventually(lambda: bool(after.of("replay")))  # sent right after login_ok
            assert after.of("replay") == [{"type": "replay", "fromSeq": 2}]
            await after.data(1, payload={"orderId": 21})
            await after.data(2, payload={"orderId": 22})
            await after.data(2, payload={"orderId": 22})  # a re-send within the session: acked, dropped
            await eventually(lambda: len(after.of("ack_batch")) == 3)
            assert inbox.order_ids() == [11, 12, 21, 22]
            assert [m["upToSeq"] for m in after.of("ack_batch")] == [1, 2, 2]
            (renumbered,) = inbox.resyncs("RENUMBERED")
            assert renumbered.payload == {"lastSeq": 2, "seq": 1, "subscriptionId": 1}
            order = [m.payload.get("orderId") if m.channel == "orders" else m.event for m in inbox.items]
            assert order == [11, 12, "RECONNECT", 21, "RENUMBERED", 22]
            assert stream.last_seq == 2 and persisted(ledger) == 2 and not after.errors
        finally:
            await stream.stop()
            ledger.close()


async def test_gap_asks_replay_acks_only_contiguous_and_delivers_in_order(tmp_path: Path) -> None:
    # Old code delivered seq 3 at once, acked past the missing seq 2 (so the server stopped
    # re-sending it) and never sent `replay`.
    ledger = Ledger(tmp_path / "bot.db")
    inbox = Inbox()
    async with ScriptedAbp([idle]) as srv:
        stream = AbpStream(srv.config(ws_gap_wait_seconds=3.0), ledger, inbox)
        await stream.start()
        try:
            s = srv.sessions[0]
            await s.data(1)
            await s.data(3)
            await eventually(lambda: bool(s.of("replay")), timeout=2)
            assert s.of("replay") == [{"type": "replay", "fromSeq": 1}]
            assert inbox.order_ids() == [1] and persisted(ledger) == 1 and s.acked() == 1
            acks_before_fill = len(s.of("ack_batch"))
            await s.data(2)  # the replay: 2, then 3 again (still unacked)
            await s.data(3)
            await eventually(lambda: s.acked() == 3)
            assert max(m["upToSeq"] for m in s.of("ack_batch")[:acks_before_fill]) == 1
            assert inbox.order_ids() == [1, 2, 3]  # in order, 3 once
            assert inbox.resyncs("GAP") == [] and stream.gaps == 1
            assert stream.last_seq == 3 and persisted(ledger) == 3 and not s.errors
        finally:
            await stream.stop()
            ledger.close()


async def test_unfilled_gap_is_skipped_after_the_wait_with_a_gap_resync(tmp_path: Path) -> None:
    # Old code sent no `replay` and emitted RESYNC GAP at once, acking past the gap.
    ledger = Ledger(tmp_path / "bot.db")
    inbox = Inbox()
    async with ScriptedAbp([idle]) as srv:
        stream = AbpStream(srv.config(ws_gap_wait_seconds=0.3), ledger, inbox)
        await stream.start()
        try:
            s = srv.sessions[0]
            await s.data(1)
            await s.data(3)
            await s.data(4, "emergency", "STATUS", {"active": True, "reason": "x", "ts": 1})
            await eventually(lambda: bool(s.of("replay")), timeout=2)
            asked = asyncio.get_running_loop().time()
            assert inbox.order_ids() == [1] and s.acked() == 1 and persisted(ledger) == 1
            await eventually(lambda: stream.emergency is True)  # a held emergency frame fails closed at once
            assert not inbox.resyncs("GAP")
            await eventually(lambda: bool(inbox.resyncs("GAP")), timeout=2)  # the server never fills it
            assert asyncio.get_running_loop().time() - asked >= 0.25  # it waited ~ws_gap_wait_seconds
            assert [m.channel for m in inbox.data()] == ["orders", "orders", "emergency"]
            assert inbox.order_ids() == [1, 3]
            assert inbox.items[-1].payload == {"from": 1, "to": 3, "missing": 1}  # after the held frames
            await eventually(lambda: s.acked() == 4)
            assert stream.last_seq == 4 and persisted(ledger) == 4
            await s.data(5)
            await eventually(lambda: s.acked() == 5)
            assert inbox.order_ids() == [1, 3, 5] and len(s.of("replay")) == 1 and stream.gaps == 1
        finally:
            await stream.stop()
            ledger.close()


async def test_held_frames_are_bounded() -> None:
    # Old code never held frames nor asked replay; here more than HELD_MAX frames past a gap
    # end the wait at once (the 30 s gap wait would outlast the test).
    inbox = Inbox()
    async with ScriptedAbp([idle]) as srv:
        stream = AbpStream(srv.config(ws_gap_wait_seconds=30.0), None, inbox)
        await stream.start()
        try:
            s = srv.sessions[0]
            await s.data(1)
            last = 2 + HELD_MAX
            for seq in range(3, last + 1):
                await s.data(seq)
            await eventually(lambda: s.acked() == last, timeout=4)
            assert s.of("replay") == [{"type": "replay", "fromSeq": 1}]
            assert inbox.order_ids() == [1, *range(3, last + 1)]
            assert [m.payload for m in inbox.resyncs("GAP")] == [{"from": 1, "to": 3, "missing": 1}]
        finally:
            await stream.stop()


async def test_disconnect_with_an_open_gap_replays_in_order_after_reconnect() -> None:
    # Old code delivered seq 3 before the gap closed, so the replayed seq 2 came after it.
    inbox = Inbox()
    async with ScriptedAbp([idle]) as srv:
        stream = AbpStream(srv.config(ws_gap_wait_seconds=3.0), None, inbox)
        await stream.start()
        try:
            first = srv.sessions[0]
            await first.data(1)
            await first.data(3)
            await eventually(lambda: bool(first.of("replay")), timeout=2)
            await first.close()
            await eventually(lambda: len(srv.sessions) == 2 and stream.logged_in.is_set())
            second = srv.sessions[1]
            await eventually(lambda: bool(second.of("replay")))  # sent right after login_ok
            assert second.of("replay") == [{"type": "replay", "fromSeq": 1}]
            await second.data(2)
            await second.data(3)
            await eventually(lambda: second.acked() == 3)
            assert inbox.order_ids() == [1, 2, 3]
        finally:
            await stream.stop()


async def test_events_and_channels_pass_through_unchanged() -> None:
    # Guards what the executor relies on (DELETE removes, other events upsert): the old stream
    # passed events through as well; the old default login lacked the `currencies` channel.
    inbox = Inbox()
    frames = [("orders", "DELETE"), ("bets", "DELETE"), ("currencies", "UPDATE"), ("settlements", "SETTLED"),
              ("orders", "STATUS_CHANGE"), ("accounts", "INSERT")]

    async def play(s: Session) -> None:
        for seq, (channel, event) in enumerate(frames, start=1):
            await s.data(seq, channel, event, {"id": seq})

    async with ScriptedAbp([play]) as srv:
        stream = AbpStream(srv.config(), None, inbox)
        await stream.start()
        try:
            s = srv.sessions[0]
            assert "currencies" in s.login["channels"] and s.login["reliableDelivery"] is True
            await eventually(lambda: s.acked() == len(frames))
            assert [(m.channel, m.event) for m in inbox.data()] == frames
            assert [m.payload for m in inbox.data()] == [{"id": i} for i in range(1, len(frames) + 1)]
        finally:
            await stream.stop()
