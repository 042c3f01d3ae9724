"""The local ABP server's WebSocket as the ABP documents describe it (docs/reference/abp.md §13;
ABP docs, WebSocket), over a real loopback socket: re-sending unacked frames, renumbering,
a silent server, `currencies`, `emergency` and `status` frames, settlements while no stream is
connected and bet DELETE events."""

from __future__ import annotations

from tests.sim.conftest import order


async def test_unacked_frames_are_resent_until_acked(abp) -> None:
    # Old: a frame was sent once and never again, acked or not; `ack` of one seq acked all before it.
    a = await abp(resend_seconds=0.3)
    s = await a.stream(["emergency"])
    await a.admin("emergency", {"active": True, "reason": "one"})
    await a.admin("emergency", {"active": False, "reason": "two"})
    first, second = await s.data(), await s.data()
    assert (first["seq"], second["seq"], first["requireAck"]) == (1, 2, True)
    await s.send({"type": "ack", "seq": 2})  # only seq 2: seq 1 is still owed
    again = await s.data(timeout=2)
    assert again["seq"] == 1 and again["payload"] == first["payload"]
    await s.send({"type": "ack_batch", "upToSeq": 2})
    assert [f for f in await s.frames_within(0.8) if f["type"] == "data"] == []  # > 2 re-send periods


async def test_no_require_ack_and_no_resend_without_reliable_delivery(abp) -> None:
    # Old: every frame carried requireAck: true, reliable delivery or not (ABP sets it only when on).
    a = await abp(resend_seconds=0.2)
    s = await a.stream(["emergency"], reliable=False)
    await a.admin("emergency", {"active": True})
    assert "requireAck" not in await s.data()
    assert [f for f in await s.frames_within(0.6) if f["type"] == "data"] == []


async def test_renumber_restarts_seq_at_1_under_the_same_subscription(abp) -> None:
    # Old: seq only ever grew (no renumbering and no restart simulation).
    a = await abp()
    s = await a.stream(["emergency"])
    await a.admin("emergency", {"active": True})
    await a.admin("emergency", {"active": False})
    assert [(await s.data())["seq"], (await s.data())["seq"]] == [1, 2]
    await a.admin("renumber")
    await a.admin("emergency", {"active": True})
    assert (await s.data())["seq"] == 1
    # a restart: the stream is closed, and the next login sees seq 1 under the same subscriptionId
    await a.admin("restart")
    s2 = await a.stream(["emergency"])
    await a.admin("emergency", {"active": False})
    assert s2.login_ok["subscriptionId"] == s.login_ok["subscriptionId"]
    assert (await s2.data())["seq"] == 1


async def test_silent_server_sends_nothing_and_keeps_data_for_replay(abp) -> None:
    # Old: no silent fault; pings, pongs and data always flowed.
    a = await abp(ping_seconds=0.2)
    s = await a.stream(["emergency"])
    assert (await s.recv())["type"] == "ping"  # a live server pings
    await a.admin("faults", {"silent": True})
    await s.send({"type": "ping"})
    await a.admin("emergency", {"active": True, "reason": "hidden"})
    frames = await s.frames_within(0.5)
    # No pong and no data; of the 2-3 pings a live server sends in 0.5 s, at most the one already
    # on the wire when the fault took effect arrives.
    assert [f for f in frames if f["type"] != "ping"] == [] and len(frames) <= 1
    await a.admin("faults", {"silent": False})
    await s.send({"type": "replay", "fromSeq": 0})  # the connection was never closed
    frame = await s.data()
    assert (frame["seq"], frame["payload"]["reason"]) == (1, "hidden")


async def test_currencies_frames_at_login_and_on_rate_changes(abp) -> None:
    # Old: the currencies channel never published anything.
    a = await abp(book_currencies={"betcris": "EUR"}, rates={"EUR": 0.92, "GBP": 0.79})
    s = await a.stream(["currencies"])
    frames = [await s.data(), await s.data()]
    assert [(f["event"], f["seq"], f["payload"]["currency"], f["payload"]["currencyValue"]) for f in frames] == [
        ("UPDATE", 1, "EUR", 0.92), ("UPDATE", 2, "GBP", 0.79)]
    assert all(isinstance(f["payload"]["ts"], int) for f in frames)
    await a.admin("rates", {"EUR": 0.93})
    frame = await s.data()
    assert (frame["seq"], frame["payload"]["currency"], frame["payload"]["currencyValue"]) == (3, "EUR", 0.93)
    (acc,) = (await a.http.get("/accounts", params={"bookmaker": "betcris"})).json()
    assert acc["currencyInfo"]["currencyValue"] == 0.93


async def test_emergency_and_status_frames(abp) -> None:
    # Old: no way to publish a `status` frame (no POST /_admin/status) and /status was always "ok".
    a = await abp()
    s = await a.stream(["emergency", "status"])
    await a.admin("emergency", {"active": True, "reason": "Upstream provider maintenance"})
    frame = await s.data("emergency")
    assert (frame["event"], frame["payload"]["active"], frame["payload"]["reason"]) == (
        "STATUS", True, "Upstream provider maintenance")
    assert isinstance(frame["payload"]["ts"], int)
    r = await a.place(order())
    assert r.status_code == 400 and r.json()["declinedOrders"][0]["declineReason"].startswith("Emergency mode active")
    await a.admin("status", {"status": "degraded"})
    frame = await s.data("status")
    assert (frame["event"], frame["payload"]["status"]) == ("STATUS", "degraded")
    assert (await a.http.get("/status")).json()["status"] == "degraded"


async def test_settle_while_disconnected_is_applied_and_its_frame_lost(abp) -> None:
    # Catches a settlement not applied while no stream is connected, or its frame kept for replay
    # although `lose_while_down` (the default) says it is lost.
    a = await abp()
    s = await a.stream(["settlements"])
    (placed,) = (await a.place(order())).json()["acceptedOrders"]
    bet_id = placed["bets"][0]["betId"]
    await a.admin("ws-drop")
    await s.frames_within(0.3)  # drain up to the close
    await a.admin("settle", {"betId": bet_id, "status": "WON"})
    (bet,) = (await a.http.get("/bets", params={"betIds": bet_id})).json()["bets"]
    assert (bet["settlementStatus"], bet["settlementAmount"]) == ("WON", 20.0)
    s2 = await a.stream(["settlements"])
    await s2.send({"type": "replay", "fromSeq": 0})
    assert [f for f in await s2.frames_within(0.3) if f["type"] == "data"] == []


async def test_delete_bet_publishes_a_bets_delete_frame(abp) -> None:
    # Old: no bet DELETE events at all.
    a = await abp()
    (placed,) = (await a.place(order())).json()["acceptedOrders"]
    bet_id = placed["bets"][0]["betId"]
    s = await a.stream(["bets"])
    await a.admin("delete-bet", {"betId": bet_id})
    frame = await s.data("bets")
    assert (frame["event"], frame["payload"]["betId"], frame["payload"]["orderId"]) == (
        "DELETE", bet_id, placed["orderId"])


async def test_a_malformed_client_message_gets_an_error_not_a_dead_stream(abp) -> None:
    # Old: a non-numeric ack seq raised inside the connection handler and ended the stream.
    a = await abp()
    s = await a.stream()
    await s.send({"type": "ack", "seq": "forty-two"})
    error = await s.recv()
    assert error["type"] == "error" and error["ref"] == {"type": "ack", "seq": "forty-two"}
    await s.send({"type": "ping"})
    assert (await s.recv())["type"] == "pong"
