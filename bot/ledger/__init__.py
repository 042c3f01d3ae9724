"""The SQLite ledger (orders, bets, settlements, events, state)."""

from bot.ledger.store import Ledger

__all__ = ["Ledger"]
