"""Logging with loguru: readable console lines and a rotating JSON file under `state/logs/`.

Secrets never reach a sink (docs/architecture.md, "Invariants > Secrets never leave"): one
patcher, installed for every record whatever code logged it, masks (bot.config.secrets) the
message, every value of `extra` (recursively: dicts, lists, objects by their text) and the
exception. An exception is formatted here (`traceback.format_exception`: the chain with
`__cause__` / `__context__`, no local variables), masked, and appended to the message; the record
then carries `extra["exception"] = {"type", "value"}` (masked) instead of the live exception, so
no sink formats it again from the unmasked object (loguru's `diagnose` would also print the
values of local variables, API keys among them). Shape of a JSON line's record:

    {"message": "order failed\\nTraceback (most recent call last):\\n ... RuntimeError: key **********",
     "extra": {"stage": "exec", "url": "https://x/?key=**********",
               "exception": {"type": "RuntimeError", "value": "key **********"}},
     "exception": null, ...}
"""

from __future__ import annotations

import logging
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from bot.config import secrets
from bot.config.settings import LoggingConfig, Settings

if TYPE_CHECKING:
    from loguru import Record  # defined in loguru's type stubs only

CONSOLE_FORMAT = (
    "<green>{time:HH:mm:ss.SSS}</green> <level>{level: <7}</level> "
    "<cyan>{extra[stage]: <9}</cyan> {message}"
)


def collect_secrets(model: Any) -> list[str]:
    """Every non-empty SecretStr value inside a pydantic model tree (bot.config.secrets.collect)."""
    return secrets.collect(model)


def mask_record(record: Record) -> None:
    """The loguru patcher: mask the message, `extra` and the exception of `record` in place with
    every secret registered in bot.config.secrets."""
    masker = secrets.masker()
    record["message"] = masker.mask_text(record["message"])
    extra = record["extra"]
    for key, value in list(extra.items()):
        extra[key] = masker.mask(value)
    exc = record["exception"]
    if exc is None:
        return
    record["exception"] = None
    kind, value, tb = exc
    if kind is None or value is None:  # logger.exception() outside an except block
        return
    text = "".join(traceback.format_exception(kind, value, tb))
    record["message"] = f"{record['message']}\n{masker.mask_text(text).rstrip()}"
    extra["exception"] = {"type": kind.__name__, "value": masker.mask_text(str(value))}


class _ToLoguru(logging.Handler):
    """Standard-library records (httpx, websockets, apscheduler ...; WARNING and above) go through
    loguru, so they are masked and written like every other line instead of reaching stderr raw."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(exception=record.exc_info).bind(stage=record.name.split(".")[0][:9]).log(
            level, record.getMessage())


def setup_logging(settings: Settings, *, console: bool = True) -> Path | None:
    """Configure the sinks; returns the JSON log path (None when the file sink is off).

    Registers every SecretStr of `settings` with bot.config.secrets (so the bus and the ledger
    mask them too), installs `mask_record` as the patcher of every record and sends the standard
    library's warnings and errors through loguru."""
    cfg: LoggingConfig = settings.logging
    secrets.register_settings(settings)
    logger.remove()
    logger.configure(extra={"stage": "bot"}, patcher=mask_record)
    root = logging.getLogger()
    if not any(isinstance(h, _ToLoguru) for h in root.handlers):
        root.addHandler(_ToLoguru(level=logging.WARNING))
    if console:
        logger.add(sys.stderr, level=cfg.level, format=CONSOLE_FORMAT, colorize=None,
                   backtrace=False, diagnose=False)
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
        backtrace=False,
        diagnose=False,
    )
    return path
