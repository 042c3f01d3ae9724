"""Which ABP bookmaker a feed's book is, and which of them this API key can reach
(docs/architecture.md, "Live venue (ABP)" > Bookmakers).

Feeds name books by their own slugs; ABP by its own (docs/reference/abp.md §12). OddsPapi shares
ABP's slug namespace (docs/reference/oddspapi.md), so an ABP slug maps to itself; `BookmakerMap`
adds the known differences of the other feeds (The Odds API keys such as `betfair_ex_eu`,
BoltOdds' `ps3838`) and the config's `abp.bookmakers` on top. A feed book with no ABP slug (The
Odds API's `fanduel`, `draftkings`, ...) is not on ABP.

`BookmakerRoute` loads at start what the key can reach: GET /bookmakers ("your key may be limited
to a subset", §12) and, when the key holds accounts, only the books with an active one (GET
/accounts, §6.6; otherwise ABP declines "No active accounts", §10).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loguru import logger
from pydantic import ValidationError

from bot.execution.errors import AbpError, AbpNotFound

if TYPE_CHECKING:
    from bot.execution.abp_client import AbpClient

# docs/reference/abp.md §12, revision R2 (32 slugs)
ABP_BOOKMAKERS: tuple[str, ...] = (
    # sportsbooks
    "pinnacle", "pinnacleb2b", "betamapola", "betcris", "bookmaker.eu", "cloudbet", "cloudbetb2b", "justbet",
    "kaiyun", "monkeyline.vip", "198bet", "paradisewager", "sharpbet", "singbet", "sports411.ag", "3et", "3et++",
    # exchanges
    "betfair-ex", "smarkets", "limitless-ex", "matchbook",
    # prediction markets
    "polymarket", "polymarket.us", "kalshi", "predict.fun", "sx.bet", "4casters", "novig.us", "prophetx", "vertex",
    # punter platforms
    "punter.io", "punter.io++",
)

# Feed slugs that differ from ABP's. Same-named books (pinnacle, matchbook, smarkets, kalshi,
# polymarket, prophetx) need no entry: an ABP slug maps to itself.
_FEED_ALIASES: dict[str, str] = {
    "ps3838": "pinnacle",  # BoltOdds; reportedly a Pinnacle alias (docs/reference/boltodds.md §8)
    "betfair_ex_eu": "betfair-ex",  # The Odds API exchange keys (eu, uk, au regions)
    "betfair_ex_uk": "betfair-ex",
    "betfair_ex_au": "betfair-ex",
    "novig": "novig.us",  # BoltOdds, The Odds API
    "sx_bet": "sx.bet",
    "sxbet": "sx.bet",
    "bookmakereu": "bookmaker.eu",
}

# ABP slugs are lowercase and may contain `.`, `-` or `+` (§12)
_SLUG = re.compile(r"[a-z0-9][a-z0-9._+-]*")


def _slug(value: str) -> str:
    return value.strip().lower()


class BookmakerMap:
    """Feed slug -> ABP slug: ABP's own slugs, the built-in feed aliases, then `overrides`
    (`abp.bookmakers`). Feed slugs are compared trimmed and lowercase.

    Raises:
        ValueError: an override names something that is not a bookmaker slug (one line naming it).
    """

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        extra = {_slug(feed): _slug(abp) for feed, abp in (overrides or {}).items()}
        for feed, abp in extra.items():
            if not _SLUG.fullmatch(feed) or not _SLUG.fullmatch(abp):
                raise ValueError(f"abp.bookmakers: {feed!r} -> {abp!r} is not a bookmaker slug "
                                 "(lowercase letters, digits, '.', '-', '+')")
        self._map = {b: b for b in ABP_BOOKMAKERS} | _FEED_ALIASES | extra

    def to_abp(self, feed_slug: str) -> str | None:
        """The ABP slug of a feed's book; None: ABP has no such book."""
        return self._map.get(_slug(feed_slug))

    def canonical(self, name: str) -> str:
        """One name per book whichever side named it (the ABP slug when there is one), so the
        breakers count a feed's `ps3838` and ABP's `pinnacle` together."""
        return self.to_abp(name) or name

    def feed_slugs(self) -> tuple[str, ...]:
        """Every feed slug the map knows, sorted."""
        return tuple(sorted(self._map))


@dataclass(frozen=True, slots=True)
class RouteRow:
    """One line of `describe()`: `offered`, `account` are None while nothing is loaded;
    `account` is None also when the key holds no accounts (no account restriction)."""

    feed: str
    abp: str | None
    offered: bool | None
    account: bool | None
    reachable: bool


class BookmakerRoute:
    """The ABP books this API key can reach, loaded by `load`. Until a load succeeds nothing is
    reachable (`loaded` False: the BOOKMAKER_UNAVAILABLE check fails closed); a failed reload
    keeps the last good answer and records `error`."""

    def __init__(self, book_map: BookmakerMap) -> None:
        self.book_map = book_map
        self.loaded = False
        self.error: str | None = None
        self.offered: tuple[str, ...] = ()  # active books of GET /bookmakers, in its order
        self.accounts: tuple[str, ...] | None = None  # books with an active account; None: key has none
        self._reachable: tuple[str, ...] = ()

    async def load(self, client: AbpClient) -> bool:
        """Read GET /bookmakers and GET /accounts; True when both answered. Never raises an ABP
        or parse error: it is logged and kept in `error`."""
        try:
            try:
                books = await client.bookmakers()
            except AbpNotFound:  # §6.7: 404 = no bookmakers
                books = []
            accounts = await client.list_accounts()
        except (AbpError, ValidationError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"[:300]
            logger.warning("ABP bookmakers: cannot load what this key reaches ({}); {}", self.error,
                           "keeping the last answer" if self.loaded else "no book is reachable until a load succeeds")
            return False
        # an account or book without `active` counts as active: the field defaults to true (§6.6, §6.7)
        self.offered = tuple(dict.fromkeys(b.bookmaker for b in books if b.active is not False))
        held = [a.bookmaker for a in accounts]
        self.accounts = tuple(dict.fromkeys(a.bookmaker for a in accounts if a.active is not False)) if held else None
        self._reachable = tuple(b for b in self.offered if self.accounts is None or b in self.accounts)
        self.loaded, self.error = True, None
        logger.info("ABP bookmakers: offered {}, with an active account {}, reachable {}", list(self.offered),
                    "(no accounts: all)" if self.accounts is None else list(self.accounts), list(self._reachable))
        return True

    @property
    def reachable(self) -> tuple[str, ...]:
        return self._reachable

    def abp_of(self, feed_slug: str) -> str | None:
        """The ABP slug of a feed's book: the map's, else the slug itself when ABP offers it (a
        book newer than the map, or a local server's own)."""
        mapped = self.book_map.to_abp(feed_slug)
        if mapped is not None:
            return mapped
        slug = _slug(feed_slug)
        return slug if slug in self.offered else None

    def abp_books(self, feed_books: Sequence[str]) -> tuple[str, ...]:
        """The reachable ABP slugs of a signal's books, in its order without repeats; no feed
        books means any book: all reachable ones."""
        if not feed_books:
            return self._reachable
        found = (self.abp_of(b) for b in feed_books)
        return tuple(dict.fromkeys(b for b in found if b is not None and b in self._reachable))

    def describe(self) -> list[RouteRow]:
        """Every known feed slug and every offered ABP book, by ABP slug (unmapped last)."""
        names = dict.fromkeys((*self.book_map.feed_slugs(), *self.offered))
        rows = [self._row(name) for name in names]
        return sorted(rows, key=lambda r: (r.abp is None, r.abp or "", r.feed != r.abp, r.feed))

    def _row(self, feed: str) -> RouteRow:
        abp = self.abp_of(feed)
        if not self.loaded:
            return RouteRow(feed, abp, None, None, False)
        account = None if self.accounts is None else abp in self.accounts
        return RouteRow(feed, abp, abp in self.offered, account, abp in self._reachable)
