"""Config of the closing line (`clv:` in config.yaml; bot/market/closing.py)."""

from __future__ import annotations

from pydantic import Field

from bot.config.base import Section
from bot.market.odds import DevigMethod


class ClvConfig(Section):
    """What a bet's closing line is measured against (docs/research.md, "Closing line value").

    `reference_books`: the books whose no-vig closing probabilities are averaged (e.g.
    [pinnacle]; [lowvig, betonlineag] for US books); empty = the consensus of every book with a
    complete market at close. `devig`: how the margin is removed (bot/market/odds.py)."""

    reference_books: list[str] = Field([], description="reference books at close; empty = consensus of all books")
    devig: DevigMethod = Field("multiplicative", description="how the closing margin is removed")
