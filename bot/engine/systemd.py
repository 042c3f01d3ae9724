"""systemd service notifications (sd_notify(3)): READY=1 once the engine trades, STOPPING=1 on
shutdown, and WATCHDOG=1 every half `WatchdogSec` while the loop turns, so systemd restarts a
bot whose event loop hangs (docs/deploy/betbot.service). Without `NOTIFY_SOCKET` (not run by
systemd) every call is a no-op.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from loguru import logger


def notify(state: str) -> bool:
    """Send `state` (e.g. "READY=1") to systemd; False when not under systemd or it failed
    (logged: a bot is never stopped by its supervisor's socket). The send never blocks: a
    receiver that does not read fills its datagram queue, and a blocking send would then hang
    the event loop that calls this."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)
            sock.connect(address)
            sock.send(state.encode())
        return True
    except OSError as exc:
        logger.warning("systemd notify {!r} failed: {}", state, exc)
        return False


def watchdog_interval() -> timedelta | None:
    """Half of systemd's `WatchdogSec` (`WATCHDOG_USEC`, for this process), or None when the
    watchdog is off."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return timedelta(microseconds=int(usec) / 2)
    except ValueError:
        logger.warning("WATCHDOG_USEC={!r} is not a number: the systemd watchdog is not fed", usec)
        return None
