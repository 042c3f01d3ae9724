"""Feed throughput: BoltOdds decode + OddsBook vs plain orjson decoding of the same frames.

Plays the real BoltOdds frames (tests/data/boltodds/message_samples.json; BoltOdds data via
GitHub thesamraj/splits-oddsfeed) in a loop until at least `--updates` outcome updates went
through `BoltOddsStream.decode` and `OddsBook.apply` (a frame's updates arrive as one `OddsBatch`,
applied whole by `OddsBook.apply_batch`, as the engine does; docs/architecture.md, Pipeline;
single updates one by one), then times `orjson.loads` over the same
frames the same number of times, and prints both rates and their ratio (goal: >= 0.25).
Each side is timed in `--rounds` interleaved rounds and the best round counts, so a busy
machine skews both sides alike.

    python bench/feed_throughput.py [--updates 1000000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bot.clock import ReplayClock
from bot.feeds.boltodds_decode import BoltOddsStream
from bot.market.book import OddsBook
from bot.types import OddsBatch, OddsUpdate

SAMPLES = Path(__file__).resolve().parent.parent / "tests/data/boltodds/message_samples.json"


def load_frames(path: Path = SAMPLES) -> list[bytes]:
    """Every captured frame, re-serialised one per WebSocket frame, in action order."""
    samples = orjson.loads(path.read_bytes())
    return [orjson.dumps(frame) for frames in samples.values() for frame in frames]


def decode_and_book(frames: list[bytes], loops: int) -> tuple[int, float]:
    stream, book = BoltOddsStream(), OddsBook(ReplayClock())
    at = datetime(2025, 9, 8, 10, 52, 40, tzinfo=UTC)
    updates, apply, apply_batch = 0, book.apply, book.apply_batch
    start = time.perf_counter()
    for _ in range(loops):
        for frame in frames:
            for event in stream.decode(frame, at):
                if type(event) is OddsBatch:
                    apply_batch(event)
                    updates += len(event.updates)
                else:
                    apply(event)
                    updates += type(event) is OddsUpdate
    return updates, time.perf_counter() - start


def orjson_only(frames: list[bytes], loops: int) -> float:
    loads = orjson.loads
    start = time.perf_counter()
    for _ in range(loops):
        for frame in frames:
            loads(frame)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=25)
    args = parser.parse_args()
    frames = load_frames()
    per_loop, _ = decode_and_book(frames, 1)
    loops = max(1, -(-args.updates // (per_loop * args.rounds)))
    ours, plain, total = [], [], 0
    for _ in range(args.rounds):
        updates, seconds = decode_and_book(frames, loops)
        ours.append(seconds)
        plain.append(orjson_only(frames, loops))
        total += updates
    ours_rate = updates / min(ours)
    plain_rate = updates / min(plain)
    print(f"frames: {len(frames)}, outcome updates per loop: {per_loop}, loops per round: {loops}")
    print(f"outcome updates through decode + OddsBook: {total:,} in {args.rounds} rounds")
    print(f"decode + OddsBook: {ours_rate:,.0f} outcome updates/s")
    print(f"orjson.loads only: {plain_rate:,.0f} outcome updates/s (same frames)")
    print(f"ratio: {ours_rate / plain_rate:.3f} (goal >= 0.25)")


if __name__ == "__main__":
    main()
