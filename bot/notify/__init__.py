"""Operator notifications (Telegram, Discord, Slack, e-mail, webhooks) through apprise.

    notifier = Notifier(settings.notify, instance="bot1", zone=settings.risk.day_timezone)
    await notifier.start()
    notifier.send(Kind.HALT, events.halt("daily loss limit reached", at=clock.now(), zone=zone))
    notifier.declined(at=clock.now(), reason="PRICE_MOVED")   # a burst becomes one message
    await notifier.stop()                                     # drains within notify.timeout_seconds

`events` formats the messages (pure), `NotifyConfig` is the `notify:` section, `Notifier` queues,
rate-limits, masks and delivers them.
"""

from bot.notify import events
from bot.notify.config import NotifyConfig
from bot.notify.events import DESCRIPTIONS, KINDS, DeclineBurst, Kind, Message, Severity
from bot.notify.notifier import Notifier

__all__ = ["DESCRIPTIONS", "KINDS", "DeclineBurst", "Kind", "Message", "Notifier", "NotifyConfig", "Severity",
           "events"]
