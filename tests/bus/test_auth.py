"""Command HMAC, timestamp window and nonce memory (bot.bus.auth), the memory kept in the
ledger across restarts, and the signature check every malformed input fails cleanly."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from bot.bus.auth import NONCE_STATE_KEY, CommandAuth, CommandRefused, build_command, verify_signature
from bot.ledger.store import Ledger

KEY = "k3y"


class Now:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _auth(now: Now) -> CommandAuth:
    return CommandAuth(SecretStr(KEY), instance="bot1", max_age_s=30, now=now)


def test_a_signed_command_is_accepted_once_and_its_args_returned() -> None:
    now = Now(1_000_000.0)
    auth = _auth(now)
    payload, sig = build_command(KEY, command="reload", instance="bot1",
                                 args={"strategy": "value", "params": {"k": 1}}, ts=now.t - 29)
    assert auth.verify("reload", payload, sig) == {"strategy": "value", "params": {"k": 1}}
    with pytest.raises(CommandRefused, match="replayed nonce"):
        auth.verify("reload", payload, sig)


def test_an_old_nonce_is_forgotten_only_once_its_timestamp_is_stale_anyway() -> None:
    now = Now(1_000_000.0)
    auth = _auth(now)
    payload, sig = build_command(KEY, command="halt", instance="bot1", ts=now.t)
    auth.verify("halt", payload, sig)
    now.t += 31  # still remembered at the edge of the window ...
    with pytest.raises(CommandRefused, match="stale timestamp"):
        auth.verify("halt", payload, sig)
    fresh, fsig = build_command(KEY, command="halt", instance="bot1", ts=now.t)
    now.t += 60  # ... and pruned after it: the memory stays bounded
    auth.verify("halt", *build_command(KEY, command="halt", instance="bot1", ts=now.t)[:2])
    assert auth.remembered == 1
    with pytest.raises(CommandRefused, match="stale timestamp"):
        auth.verify("halt", fresh, fsig)


@given(index=st.integers(min_value=0), flip=st.integers(min_value=1, max_value=255))
def test_any_altered_byte_fails_the_hmac(index: int, flip: int) -> None:
    now = Now(1_000_000.0)
    payload, sig = build_command(KEY, command="halt", instance="bot1", ts=now.t, nonce="n" * 16)
    i = index % len(payload)
    tampered = payload[:i] + bytes([payload[i] ^ flip]) + payload[i + 1:]
    with pytest.raises(CommandRefused, match="bad hmac"):
        _auth(now).verify("halt", tampered, sig)


def test_future_timestamps_are_refused_too() -> None:
    now = Now(1_000_000.0)
    payload, sig = build_command(KEY, command="halt", instance="bot1", ts=now.t + 120)
    with pytest.raises(CommandRefused, match="stale timestamp"):
        _auth(now).verify("halt", payload, sig)


class DictStore:
    """The Ledger's get_state/set_state over a dict (values copied, as a database would)."""

    def __init__(self) -> None:
        self.data: dict[str, dict] = {}
        self.writes = 0

    def get_state(self, key: str) -> dict | None:
        return orjson.loads(orjson.dumps(self.data[key])) if key in self.data else None

    def set_state(self, key: str, value: dict) -> None:
        self.writes += 1
        self.data[key] = orjson.loads(orjson.dumps(value))


def test_a_command_replayed_after_a_restart_is_refused_and_a_fresh_one_accepted(tmp_path) -> None:
    now = Now(1_000_000.0)
    ledger = Ledger(tmp_path / "bot.db")
    payload, sig = build_command(KEY, command="resume", instance="bot1", ts=now.t)
    first = CommandAuth(SecretStr(KEY), instance="bot1", max_age_s=30, now=now, store=ledger)
    assert first.verify("resume", payload, sig) == {}
    stored = ledger.get_state(NONCE_STATE_KEY)
    assert stored is not None and list(stored["nonces"]) == [orjson.loads(payload)["nonce"]]
    assert stored["last_ts"] == now.t
    ledger.close()

    now.t += 7.8  # the bot restarts on the same ledger; the captured command comes again
    ledger = Ledger(tmp_path / "bot.db")
    second = CommandAuth(SecretStr(KEY), instance="bot1", max_age_s=30, now=now, store=ledger)
    with pytest.raises(CommandRefused, match="replayed nonce"):
        second.verify("resume", payload, sig)
    fresh = build_command(KEY, command="resume", instance="bot1", ts=now.t)
    assert second.verify("resume", *fresh) == {}
    ledger.close()


def test_a_wall_clock_set_back_after_a_restart_does_not_revive_a_forgotten_nonce() -> None:
    now, store = Now(1_000_000.0), DictStore()
    payload, sig = build_command(KEY, command="resume", instance="bot1", ts=now.t)
    CommandAuth(SecretStr(KEY), instance="bot1", max_age_s=30, now=now, store=store).verify("resume", payload, sig)
    now.t += 40  # its nonce is forgotten (the command is stale anyway) ...
    auth = CommandAuth(SecretStr(KEY), instance="bot1", max_age_s=30, now=now, store=store)
    auth.verify("halt", *build_command(KEY, command="halt", instance="bot1", ts=now.t))
    assert auth.remembered == 1
    now.t -= 25  # ... then the clock is set back: the old command would pass the age check again
    again = CommandAuth(SecretStr(KEY), instance="bot1", max_age_s=30, now=now, store=store)
    with pytest.raises(CommandRefused, match="replay window"):
        again.verify("resume", payload, sig)


def test_the_memory_is_bounded_and_evicting_raises_the_floor() -> None:
    now, store = Now(1_000_000.0), DictStore()
    auth = CommandAuth(SecretStr(KEY), instance="bot1", max_age_s=30, now=now, store=store, max_nonces=3)
    sent = [build_command(KEY, command="status", instance="bot1", ts=now.t - 10 + i) for i in range(5)]
    for payload, sig in sent:
        auth.verify("status", payload, sig)
    assert auth.remembered == 3 and len(store.data[NONCE_STATE_KEY]["nonces"]) == 3
    for payload, sig in sent[:2]:  # evicted, yet refused: the floor rose past them
        with pytest.raises(CommandRefused, match="replay window"):
            auth.verify("status", payload, sig)
    for payload, sig in sent[2:]:
        with pytest.raises(CommandRefused, match="replayed nonce"):
            auth.verify("status", payload, sig)


def test_an_unreadable_memory_refuses_every_command_signed_before_the_start() -> None:
    now, store = Now(1_000_000.0), DictStore()
    store.data[NONCE_STATE_KEY] = {"v": 1, "nonces": "garbage"}
    auth = CommandAuth(SecretStr(KEY), instance="bot1", max_age_s=30, now=now, store=store)
    with pytest.raises(CommandRefused, match="replay window"):
        auth.verify("halt", *build_command(KEY, command="halt", instance="bot1", ts=now.t - 1))
    assert auth.verify("halt", *build_command(KEY, command="halt", instance="bot1", ts=now.t + 1)) == {}


def test_a_command_whose_nonce_cannot_be_stored_does_not_run() -> None:
    class Broken(DictStore):
        def set_state(self, key: str, value: dict) -> None:
            raise OSError("disk full")

    now = Now(1_000_000.0)
    auth = CommandAuth(SecretStr(KEY), instance="bot1", max_age_s=30, now=now, store=Broken())
    payload, sig = build_command(KEY, command="resume", instance="bot1", ts=now.t)
    with pytest.raises(CommandRefused, match="nonce memory unavailable"):
        auth.verify("resume", payload, sig)
    assert auth.remembered == 0


@pytest.mark.parametrize(
    ("signature", "reason"),
    [(None, "missing hmac"), ("", "missing hmac"), (b"\x00" * 64, "not text"), ("é" * 64, "not ASCII"),
     ("\udcff" * 64, "not ASCII"), ("g" * 64, "not hexadecimal"), ("ab", "2 characters"), ("f" * 64, "bad hmac")],
)
def test_a_malformed_signature_is_refused_with_its_reason_never_an_exception(signature: object, reason: str) -> None:
    with pytest.raises(CommandRefused, match=reason):
        verify_signature(KEY, b"{}", signature)


@given(signature=st.text(max_size=80))
def test_any_text_as_signature_is_refused_cleanly(signature: str) -> None:
    with pytest.raises(CommandRefused):
        verify_signature(KEY, b"payload", signature)
