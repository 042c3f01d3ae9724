"""Feed bookmaker slugs -> ABP slugs, what an API key reaches (GET /bookmakers, GET /accounts on the
local ABP server over loopback), BOOKMAKER_UNAVAILABLE and `bot abp bookmakers`
(docs/reference/abp.md §6.6, §6.7, §12).

Old behaviour these catch: there was no map and no route, so a live signal naming a book ABP does
not have (The Odds API's `fanduel`) or one the key has no active account at went out and was only
declined by ABP, and a feed's `ps3838` and ABP's `pinnacle` kept separate breakers.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from bot.execution.abp_client import AbpClient
from bot.execution.bookmakers import ABP_BOOKMAKERS, BookmakerMap, BookmakerRoute
from bot.execution.cli import app
from bot.execution.models import AccountCreate
from bot.risk.config import BreakerConfig
from bot.risk.reasons import Reason
from bot.sim.abp_server import Faults, LocalAbpServer
from bot.types import Instrument, VenueAlert, VenueAlertKind, Verdict
from tests.execution.conftest import API_KEY, abp_config
from tests.risk.factories import Env, make_signal, selection

BOOKS = ("pinnacle", "betfair-ex", "kalshi", "paper")
INSTRUMENT = Instrument("id1000004461512432", 101)


@pytest.fixture
async def make_server() -> AsyncIterator[Callable[..., Awaitable[LocalAbpServer]]]:
    """A local ABP server offering BOOKS; `accounts=[]`: the key holds no accounts (the server's
    default is one active account per offered book)."""
    started: list[LocalAbpServer] = []

    async def make(**kw: Any) -> LocalAbpServer:
        srv = LocalAbpServer(api_key=API_KEY, bookmakers=BOOKS, faults=Faults(), **kw)
        srv.base_url = await srv.start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        await srv.stop()


@pytest.fixture
async def server(make_server: Callable[..., Awaitable[LocalAbpServer]]) -> LocalAbpServer:
    return await make_server(accounts=[])


async def _route(server: LocalAbpServer, *accounts: AccountCreate, overrides: dict[str, str] | None = None,
                 ) -> tuple[BookmakerRoute, bool]:
    route = BookmakerRoute(BookmakerMap(overrides))
    async with AbpClient(abp_config(server, max_attempts=1)) as client:
        for account in accounts:
            await client.create_account(account)
        ok = await route.load(client)
    return route, ok


# -- the map --------------------------------------------------------------------------------


def test_abp_lists_32_slugs_and_the_known_feed_differences() -> None:
    assert len(set(ABP_BOOKMAKERS)) == 32
    book_map = BookmakerMap()
    assert [book_map.to_abp(s) for s in ("ps3838", "PS3838 ", "novig", "betfair_ex_uk", "sx_bet", "bookmakereu")] == [
        "pinnacle", "pinnacle", "novig.us", "betfair-ex", "sx.bet", "bookmaker.eu"]
    assert [book_map.to_abp(s) for s in ("pinnacle", "matchbook", "smarkets", "kalshi", "polymarket")] == [
        "pinnacle", "matchbook", "smarkets", "kalshi", "polymarket"]
    # The Odds API's US books (tests/data/oddsapi) are not on ABP
    assert {book_map.to_abp(s) for s in ("fanduel", "draftkings", "lowvig", "williamhill_us", "betmgm")} == {None}


@given(st.text(max_size=20))
def test_a_built_in_mapping_is_always_an_abp_slug(feed: str) -> None:
    assert BookmakerMap().to_abp(feed) in (None, *ABP_BOOKMAKERS)


@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True), st.sampled_from(ABP_BOOKMAKERS)),
       st.text(max_size=12))
def test_overrides_win_and_still_name_abp_slugs(overrides: dict[str, str], feed: str) -> None:
    book_map = BookmakerMap(overrides)
    assert book_map.to_abp(feed) in (None, *ABP_BOOKMAKERS)
    assert all(book_map.to_abp(f) == abp for f, abp in overrides.items())


def test_a_bad_override_is_one_line_naming_it() -> None:
    with pytest.raises(ValueError, match=r"abp.bookmakers: 'mybook' -> 'pin nacle' is not a bookmaker slug"):
        BookmakerMap({"mybook": "pin nacle"})


# -- the route --------------------------------------------------------------------------------


async def test_route_without_accounts_reaches_every_offered_book(server: LocalAbpServer) -> None:
    route, ok = await _route(server)
    assert ok and route.loaded and route.accounts is None
    assert route.offered == route.reachable == BOOKS
    assert route.abp_books(("fanduel", "ps3838", "pinnacle")) == ("pinnacle",)
    assert route.abp_books(("betfair_ex_uk", "betfair_ex_eu")) == ("betfair-ex",)
    assert route.abp_books(("paper",)) == ("paper",)  # offered by ABP though not in the map: itself
    assert route.abp_books(("fanduel", "draftkings")) == ()
    assert route.abp_books(()) == BOOKS  # no books named: any book


async def test_route_with_accounts_reaches_only_books_with_an_active_one(server: LocalAbpServer) -> None:
    route, ok = await _route(server, AccountCreate(bookmaker="pinnacle", username="u1"),
                             AccountCreate(bookmaker="kalshi", username="u2", active=False))
    assert ok and route.accounts == ("pinnacle",) and route.reachable == ("pinnacle",)
    assert route.abp_books(("kalshi", "betfair_ex_eu")) == ()
    assert route.abp_books(()) == ("pinnacle",)
    rows = {r.feed: r for r in route.describe()}
    assert (rows["ps3838"].abp, rows["ps3838"].offered, rows["ps3838"].account, rows["ps3838"].reachable) == (
        "pinnacle", True, True, True)
    assert (rows["kalshi"].offered, rows["kalshi"].account, rows["kalshi"].reachable) == (True, False, False)


async def test_route_reads_the_keys_subset_and_its_404(make_server: Callable[..., Awaitable[LocalAbpServer]],
                                                      ) -> None:
    subset, _ = await _route(await make_server(allowed_bookmakers=("kalshi", "betfair-ex")))
    assert subset.offered == subset.reachable == ("betfair-ex", "kalshi")  # default accounts: one per book
    assert subset.abp_books(("ps3838", "betfair_ex_au")) == ("betfair-ex",)
    none, ok = await _route(await make_server(allowed_bookmakers=("vertex",)))  # GET /bookmakers: 404
    assert ok and none.loaded and none.offered == () and none.abp_books(()) == ()


async def test_a_failed_load_fails_closed_then_keeps_the_last_good_answer(server: LocalAbpServer) -> None:
    server.faults.fail_5xx = 10
    route, ok = await _route(server)
    assert not ok and not route.loaded and "503" in (route.error or "") and route.abp_books(()) == ()
    server.faults.fail_5xx = 0
    async with AbpClient(abp_config(server, max_attempts=1)) as client:
        assert await route.load(client)
        server.faults.fail_5xx = 10
        assert not await route.load(client)
    assert route.loaded and route.reachable == BOOKS and route.error is not None


# -- the risk check and the breakers --------------------------------------------------------


async def test_signals_for_books_abp_cannot_reach_are_rejected(server: LocalAbpServer,
                                                               make_env: Callable[..., Env]) -> None:
    route, _ = await _route(server, AccountCreate(bookmaker="pinnacle", username="u1"))
    env = make_env(requires_mapping=True, route=route)
    sel = selection()
    for book in ("fanduel", "ps3838", "kalshi"):
        env.quote(sel, book)
    rejected = await env.risk.evaluate(make_signal(sel, env.clock.now(), bookmakers=("fanduel", "kalshi")), INSTRUMENT)
    assert (rejected.verdict, rejected.reason) == (Verdict.REJECTED, Reason.BOOKMAKER_UNAVAILABLE)
    assert rejected.details["abp"] == {"fanduel": None, "kalshi": "kalshi"}
    assert rejected.details["offered"] == list(BOOKS) and rejected.details["accounts"] == ["pinnacle"]
    approved = await env.risk.evaluate(make_signal(sel, env.clock.now(), bookmakers=("fanduel", "ps3838")), INSTRUMENT)
    assert approved.approved, approved


async def test_feed_and_abp_names_of_a_book_share_one_breaker(server: LocalAbpServer,
                                                              make_env: Callable[..., Env]) -> None:
    route, _ = await _route(server)
    env = make_env(requires_mapping=True, route=route,
                   bookmaker_breaker=BreakerConfig(max_consecutive_failures=2, cooldown_seconds=30))
    sel = selection()
    env.quote(sel, "ps3838")
    for _ in range(2):  # the venue names the book by its ABP slug
        env.risk.on_execution_event(VenueAlert(VenueAlertKind.BOOKMAKER_UNAVAILABLE, "Bookmaker not available",
                                               env.clock.now(), ("pinnacle",)))
    d = await env.risk.evaluate(make_signal(sel, env.clock.now(), bookmakers=("ps3838",)), INSTRUMENT)
    assert (d.reason, d.details["breaker"]) == (Reason.BREAKER_OPEN, "pinnacle")


# -- bot abp bookmakers --------------------------------------------------------------------------


def _config(tmp_path: Path, **abp: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"abp": abp}))
    return path


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.delenv("BOT_ABP__API_KEY", raising=False)
    monkeypatch.delenv("BOT_ABP__BASE_URL", raising=False)
    return CliRunner()


async def test_cli_prints_the_map_and_what_the_key_reaches(server: LocalAbpServer, tmp_path: Path,
                                                           runner: CliRunner) -> None:
    async with AbpClient(abp_config(server)) as client:
        await client.create_account(AccountCreate(bookmaker="betfair-ex", username="u1"))
    config = _config(tmp_path, base_url=server.base_url, api_key=API_KEY, requests_per_second=100,
                     bookmakers={"myfeed_pin": "pinnacle"})
    result = await asyncio.to_thread(runner.invoke, app, ["bookmakers", "-c", str(config)])
    assert result.exit_code == 0, result.output
    cells = [[c.strip() for c in line.strip("│ ").split("│")] for line in result.output.splitlines()
             if line.startswith("│")]
    rows = {c[0]: c[1:] for c in cells}
    assert rows["betfair_ex_uk"] == ["betfair-ex", "yes", "yes", "yes"]
    assert rows["myfeed_pin"] == ["pinnacle", "yes", "no", "no"]  # offered, but no account for it
    assert rows["singbet"] == ["singbet", "no", "no", "no"]
    assert rows["paper"] == ["paper", "yes", "no", "no"]  # offered by this server, not in the map
    assert "reachable: betfair-ex; accounts: betfair-ex" in result.output


async def test_cli_without_a_key_prints_the_map_and_with_abp_down_exits_1(server: LocalAbpServer, tmp_path: Path,
                                                                         runner: CliRunner) -> None:
    result = await asyncio.to_thread(runner.invoke, app, ["bookmakers", "-c", str(_config(tmp_path))])
    assert result.exit_code == 0 and "abp.api_key is not set" in result.output and "betfair_ex_eu" in result.output
    server.faults.fail_5xx = 100
    down = _config(tmp_path, base_url=server.base_url, api_key=API_KEY, max_attempts=1, requests_per_second=100)
    result = await asyncio.to_thread(runner.invoke, app, ["bookmakers", "-c", str(down)])
    assert result.exit_code == 1 and "ABP could not be asked" in result.output and "503" in result.output
