"""Standard reason codes of risk decisions (docs/architecture.md, "Risk").

A rejected or resized `Decision` carries one of these in `Decision.reason` (or a user check's own
uppercase code, bot/risk/checks.py); the ledger stores it in `decisions.reason`, so reports can
count rejections per code.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    # stake and price of the signal itself
    STAKE_BELOW_MIN = "STAKE_BELOW_MIN"
    STAKE_ABOVE_MAX = "STAKE_ABOVE_MAX"
    ODDS_OUT_OF_RANGE = "ODDS_OUT_OF_RANGE"
    INVALID_SIGNAL = "INVALID_SIGNAL"  # non-positive stake, min_price above price, lay without price
    SIGNAL_EXPIRED = "SIGNAL_EXPIRED"  # expires_at already passed on the engine clock
    # the market right now (OddsBook)
    PRICE_STALE = "PRICE_STALE"  # no fresh quote at any target bookmaker
    SUSPENDED = "SUSPENDED"  # every target bookmaker has the selection suspended
    PRICE_MOVED = "PRICE_MOVED"  # best usable quote is below the signal's min_price
    DUPLICATE_SIGNAL = "DUPLICATE_SIGNAL"
    # exposure caps (worst-case loss, open bets + in-flight orders)
    EXPOSURE_SELECTION = "EXPOSURE_SELECTION"
    EXPOSURE_FIXTURE = "EXPOSURE_FIXTURE"
    EXPOSURE_MARKET = "EXPOSURE_MARKET"  # the market's worst case over its outcomes, backs and lays netted
    EXPOSURE_BOOKMAKER = "EXPOSURE_BOOKMAKER"
    EXPOSURE_STRATEGY = "EXPOSURE_STRATEGY"
    EXPOSURE_TOTAL = "EXPOSURE_TOTAL"
    # flow control
    RATE_LIMIT = "RATE_LIMIT"
    BREAKER_OPEN = "BREAKER_OPEN"
    # trading state
    LOSS_LIMIT = "LOSS_LIMIT"
    DRAWDOWN = "DRAWDOWN"
    TRADING_HALTED = "TRADING_HALTED"
    REDUCING_ONLY = "REDUCING_ONLY"
    EMERGENCY = "EMERGENCY"
    KILL_SWITCH = "KILL_SWITCH"  # state_dir/KILL exists
    # plumbing
    UNMAPPED = "UNMAPPED"
    BOOKMAKER_UNAVAILABLE = "BOOKMAKER_UNAVAILABLE"  # no target book is one the venue can reach
    GROUP_INCOMPLETE = "GROUP_INCOMPLETE"  # another leg of the same all-or-none group was rejected
    RISK_UNAVAILABLE = "RISK_UNAVAILABLE"  # ledger or book could not answer: fail closed
    MM_STALE = "MM_STALE"  # mm.combined_exposure: MM positions not loaded or older than mm.stale_after_seconds
