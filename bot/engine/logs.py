"""Logging with loguru: readable console lines and a rotating JSON file under `state/logs/`.

Secrets never reach a sink: every configured SecretStr value is masked in each message and in
the serialised record, whatever code logged it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger
from pydantic import SecretStr

from bot.config.settings import LoggingConfig, Settings

if TYPE_CHECKING:
    from loguru import Record  # defined in loguru's type stubs only

CONSOLE_FORMAT = (
    "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[stage]: <9}</cyan> {message}"
)


def collect_secrets(model: Any) -> list[str]:
    """Every non-empty SecretStr value inside a pydantic model tree."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, SecretStr):
            if value.get_secret_value():
                found.append(value.get_secret_value())
        elif hasattr(value, "__pydantic_fields__"):
            for name in type(value).model_fields:
                walk(getattr(value, name))
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    walk(model)
    return found


def _masker(secrets: Iterable[str]) -> Callable[[Record], bool]:
    longest_first = sorted(set(secrets), key=len, reverse=True)  # a secret that contains another is masked whole

    def mask(record: Record) -> bool:
        for secret in longest_first:
            if secret in record["message"]:
                record["message"] = record["message"].replace(secret, "**********")
        return True

    return mask


def setup_logging(settings: Settings, *, console: bool = True) -> Path | None:
    """Configure the sinks; returns the JSON log path (None when the file sink is off)."""
    cfg: LoggingConfig = settings.logging
    logger.remove()
    logger.configure(extra={"stage": "bot"})
    mask = _masker(collect_secrets(settings))
    if console:
        logger.add(sys.stderr, level=cfg.level, format=CONSOLE_FORMAT, filter=mask, colorize=None)
    if not cfg.json_file:
        return None
    path = settings.state_dir / "logs" / "bot.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    logger.add(
        path,
        level="DEBUG",
        serialize=True,
        rotation=cfg.rotation,
        retention=cfg.retention,
        compression="gz",
        enqueue=False,
        filter=mask,
    )
    return path
