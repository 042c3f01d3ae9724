"""The operator hears about it (bot/engine/alerts.py): a real paper engine with `notify.urls`
pointing at a local webhook receiver sends start, a breaker opening (after the venue twice says a
bookmaker is unavailable), a halt and its resume, and stop; a secret of the config that ends up
in a halt reason arrives masked, and no secret is in any message."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.config import secrets
from bot.config.settings import load_settings
from bot.engine.wiring import build_engine
from bot.types import VenueAlert, VenueAlertKind
from tests.engine.conftest import write_config
from tests.notify.test_notifier import Receiver

API_KEY = "abp-live-Zq81mPx3Kd7w"


async def test_start_breaker_halt_resume_and_stop_reach_the_webhook_without_secrets(tmp_path: Path) -> None:
    receiver = Receiver()
    try:
        config = write_config(
            tmp_path, notify={"urls": [receiver.url], "min_interval_seconds": 0},
            abp={"api_key": API_KEY},
            risk={"bookmaker_breaker": {"max_consecutive_failures": 2, "min_samples": 100, "cooldown_seconds": 60}})
        engine = await build_engine(load_settings(config), config_dir=tmp_path)
        await engine.start()
        titles = [p.data["title"] for p in await receiver.arrival(1)]
        assert "start" in titles[0].lower() and titles[0].startswith("[bot1]")

        at = datetime.now(UTC)
        for _ in range(2):
            await engine.on_execution_event(VenueAlert(VenueAlertKind.UNAVAILABLE, "503 unavailable", at, ("fanduel",)))
        posts = await receiver.arrival(2)
        assert "Circuit breaker OPEN: fanduel" in posts[1].data["title"]

        await engine.halt(f"operator: key {API_KEY} leaked in a reason")
        posts = await receiver.arrival(3)
        assert "halt" in posts[2].data["title"].lower()
        assert "operator: key" in posts[2].data["message"]

        await engine.resume()
        await engine._watch_control()  # the half-second control watch sees the state change
        posts = await receiver.arrival(4)
        assert "resume" in posts[3].data["title"].lower()

        await engine.shutdown()
        posts = await receiver.arrival(5)
        assert "stop" in posts[4].data["title"].lower()
        for post in posts:
            assert API_KEY not in post.raw.decode() and API_KEY not in str(post.headers)
    finally:
        receiver.close()
        secrets.forget_all()
