"""Real captured frames (tests/data/, see the READMEs there) for the feed tests."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from bot.types import FeedEvent, OddsBatch

DATA = Path(__file__).resolve().parent.parent / "data"
BOLT_SAMPLES = DATA / "boltodds" / "message_samples.json"
VIKINGS_GAME = "Chicago Bears vs Minnesota Vikings, 2025-09-08, 08"


@pytest.fixture(scope="session")
def bolt_samples() -> dict[str, list[dict]]:
    """action -> the real frames of that action."""
    return orjson.loads(BOLT_SAMPLES.read_bytes())


@pytest.fixture(scope="session")
def bolt_frames(bolt_samples: dict[str, list[dict]]) -> list[bytes]:
    """Every real frame serialised as sent on the wire, initial_state first."""
    return [orjson.dumps(f) for action in bolt_samples for f in bolt_samples[action]]


def unbatched(events: list[FeedEvent]) -> list[FeedEvent]:
    """`events` with every OddsBatch spelled out as its clears, then its updates: the order the
    book applies them (bot.types.OddsBatch)."""
    out: list[FeedEvent] = []
    for event in events:
        if isinstance(event, OddsBatch):
            out.extend(event.cleared)
            out.extend(event.updates)
        else:
            out.append(event)
    return out
