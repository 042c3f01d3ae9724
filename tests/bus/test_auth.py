"""Command HMAC, timestamp window and nonce memory (bot.bus.auth)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from bot.bus.auth import CommandAuth, CommandRefused, build_command

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
