"""`bot feeds ...`: BoltOdds discovery (get-info, get-games, get-markets), a filter check, and
the local servers for development: BoltOdds-protocol (serve-boltodds), OddsPapi v5
(serve-oddspapi), Olympus (serve-olympus) and a Scraping API relay (serve-scraping,
bot/sim/scraping_server.py).

The servers are simulators (docs/architecture.md, "Simulators"): each command imports its server
inside the command and needs the `sim` extra, so nothing in `bot.feeds` imports `bot.sim`.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Awaitable, Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # each command imports what it runs: `bot --help` stays light (bot/cli.py)
    from rich.console import Console

    from bot.feeds.boltodds_rest import BoltOddsRest
    from bot.feeds.config import BoltOddsConfig

app = typer.Typer(help="Odds feeds: BoltOdds discovery, local BoltOdds, OddsPapi and Olympus servers, a local "
                  "Scraping API relay.", no_args_is_help=True)


@cache
def _console() -> Console:
    from rich.console import Console

    return Console()


ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="config.yaml with a feeds.boltodds section")]
KeyOpt = Annotated[str | None, typer.Option("--key", envvar="BOLTODDS_API_KEY", help="API key (overrides the config)")]
RestOpt = Annotated[str | None, typer.Option("--rest-url", help="REST base URL (default from the config)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print raw JSON")]
CsvList = Annotated[str | None, typer.Option(help="comma-separated names, exactly as get-info lists them")]


def _config(config: Path | None, key: str | None, rest_url: str | None) -> BoltOddsConfig:
    from pydantic import SecretStr

    from bot.config.settings import ConfigError, load_settings
    from bot.feeds.config import BoltOddsConfig

    section: dict[str, Any] = {}
    if config is not None or Path("config.yaml").is_file():
        try:
            settings = load_settings(config or Path("config.yaml"))
        except ConfigError as exc:
            raise typer.BadParameter(str(exc)) from None
        if settings.feeds.boltodds is not None:
            section = settings.feeds.boltodds.model_dump()
    if key:
        section["api_key"] = SecretStr(key)
    if rest_url:
        section["rest_url"] = rest_url
    if "api_key" not in section:
        raise typer.BadParameter("no BoltOdds key: set feeds.boltodds.api_key, BOLTODDS_API_KEY or --key")
    return BoltOddsConfig(**section)


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def _call(cfg: BoltOddsConfig, fn: Callable[[BoltOddsRest], Awaitable[Any]]) -> Any:
    import asyncio

    from bot.feeds.boltodds_rest import BoltOddsRest, BoltOddsRestError

    async def go() -> Any:
        async with BoltOddsRest(cfg) as rest:
            return await fn(rest)

    try:
        return asyncio.run(go())
    except BoltOddsRestError as exc:
        _console().print(f"[red]BoltOdds request failed:[/red] {exc}")
        raise typer.Exit(1) from None


@app.command("get-info")
def get_info(config: ConfigOpt = None, key: KeyOpt = None, rest_url: RestOpt = None, as_json: JsonOpt = False) -> None:
    """Sports and sportsbooks you can subscribe to (exact filter names)."""
    info = _call(_config(config, key, rest_url), lambda r: r.get_info())
    if as_json:
        print(json.dumps(info, indent=2))
        return
    for field in ("sports", "sportsbooks"):
        _console().print(f"[bold]{field}[/bold] ({len(info.get(field, []))}): " + ", ".join(info.get(field, [])))


@app.command("get-games")
def get_games(
    config: ConfigOpt = None, key: KeyOpt = None, rest_url: RestOpt = None, sports: CsvList = None,
    as_json: JsonOpt = False,
) -> None:
    """Games you can subscribe to (the keys are the exact `games` filter strings)."""
    games = _call(_config(config, key, rest_url), lambda r: r.get_games(_split(sports)))
    if as_json:
        print(json.dumps(games, indent=2))
        return
    from rich.table import Table

    table = Table("game (filter string)", "sport", "when (US Eastern)", "universal id")
    for name, game in sorted(games.items()):
        table.add_row(name, str(game.get("sport", "")), str(game.get("when", "")), str(game.get("universal_id", "")))
    _console().print(table)


@app.command("get-markets")
def get_markets(
    config: ConfigOpt = None, key: KeyOpt = None, rest_url: RestOpt = None, sports: CsvList = None,
    sportsbooks: CsvList = None, as_json: JsonOpt = False,
) -> None:
    """Market names per sportsbook and sport (exact `markets` filter strings)."""
    markets = _call(_config(config, key, rest_url), lambda r: r.get_markets(_split(sports), _split(sportsbooks)))
    if as_json:
        print(json.dumps(markets, indent=2))
        return
    from rich.table import Table

    table = Table("sportsbook", "sport", "markets")
    for book, sports_ in sorted(markets.items()):
        for sport, names in sorted(sports_.items()):
            table.add_row(book, sport, ", ".join(names))
    _console().print(table)


@app.command("check-filters")
def check_filters(config: ConfigOpt = None, key: KeyOpt = None, rest_url: RestOpt = None) -> None:
    """Report configured filter names the feed would silently ignore; exit 1 if any."""
    from bot.feeds.boltodds_rest import unknown_filters

    console = _console()
    cfg = _config(config, key, rest_url)
    problems = _call(cfg, lambda r: unknown_filters(cfg, r))
    for line in problems:
        console.print(f"[yellow]ignored by the feed:[/yellow] {line}")
    if problems:
        raise typer.Exit(1)
    console.print("all configured filter names exist")


@app.command("serve-boltodds")
def serve_boltodds(
    recording: Annotated[Path, typer.Argument(help="our recording (.jsonl[.gz]) or a samples .json")],
    host: Annotated[str, typer.Option(help="bind address (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="0 = a free port")] = 8765,
    key: Annotated[str | None, typer.Option(help="require this key")] = None,
    interval: Annotated[float, typer.Option(help="seconds between frames")] = 0.5,
    ping_interval: Annotated[float, typer.Option(help="seconds between pings")] = 15.0,
) -> None:
    """Serve a recording with the BoltOdds protocol. Send SIGUSR1 to drop every connection."""
    import asyncio

    from bot.sim.extra import require_sim_extra

    require_sim_extra("bot feeds serve-boltodds")
    from bot.sim.bolt_server import BoltServer, load_frames
    from bot.sim.serving import run_until_interrupted

    async def go() -> None:
        async with BoltServer(load_frames(recording), host=host, port=port, api_key=key,
                              interval=interval, ping_interval=ping_interval) as server:
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGUSR1, lambda: loop.create_task(server.drop()))
            _console().print(f"serving {len(server.frames)} frames on {server.url} (REST {server.rest_url}); "
                          "SIGUSR1 drops connections, Ctrl-C stops")
            await asyncio.Event().wait()

    run_until_interrupted(go)


@app.command("serve-scraping")
def serve_scraping(
    key: Annotated[str, typer.Option(help="the API key clients must send in X-API-Key")],
    host: Annotated[str, typer.Option(help="bind address (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="0 = a free port")] = 8770,
    rps: Annotated[float, typer.Option(help="requests per second per key (0 = no limit)")] = 10.0,
) -> None:
    """Serve a local 55-Tech Scraping API relay that forwards /fetch to loopback targets only
    (faults: POST /_admin/faults, e.g. {"blocked": 1}; docs/reference/scraping.md)."""
    from bot.sim.extra import require_sim_extra

    require_sim_extra("bot feeds serve-scraping")
    from bot.sim.scraping_server import LocalScrapingServer
    from bot.sim.serving import serve_until_interrupted

    def ready(_: LocalScrapingServer, url: str) -> None:
        _console().print(f"serving the Scraping API relay on {url} (loopback targets only); Ctrl-C stops")

    serve_until_interrupted(lambda: LocalScrapingServer(api_keys=[key], rps=rps or None), host, port, ready)


@app.command("serve-oddspapi")
def serve_oddspapi(
    data: Annotated[Path, typer.Argument(help="data set folder with markets.json and fixtures.json "
                                               "(e.g. tests/data/oddspapi)")],
    host: Annotated[str, typer.Option(help="bind address (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="0 = a free port")] = 8766,
    key: Annotated[str, typer.Option(help="the apiKey clients must send")] = "local-oddspapi-key",
    hours_from_now: Annotated[float, typer.Option(help="move the first kickoff this far ahead")] = 2.0,
) -> None:
    """Serve an OddsPapi v5 data set over REST + WebSocket (bot/sim/oddspapi_server.py). SIGUSR1 drops
    every WebSocket connection."""
    import asyncio
    from datetime import UTC, datetime, timedelta

    from bot.sim.extra import require_sim_extra

    require_sim_extra("bot feeds serve-oddspapi")
    from bot.sim.oddspapi_server import LocalOddsPapiServer, load_dataset
    from bot.sim.serving import serve_until_interrupted

    markets, fixtures = load_dataset(data)

    def make() -> LocalOddsPapiServer:
        return LocalOddsPapiServer(markets, fixtures, api_key=key,
                                   rebase=datetime.now(UTC) + timedelta(hours=hours_from_now))

    def ready(server: LocalOddsPapiServer, url: str) -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, server.drop)
        _console().print(f"serving {len(fixtures)} fixtures on {url}/en (WebSocket {server.ws_url}); "
                         "SIGUSR1 drops connections, Ctrl-C stops")

    serve_until_interrupted(make, host, port, ready)


@app.command("serve-olympus")
def serve_olympus(
    recorded: Annotated[Path, typer.Argument(help="recorded responses (tests/data/olympus/recorded.json)")],
    host: Annotated[str, typer.Option(help="bind address (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="0 = a free port")] = 8767,
    key: Annotated[str | None, typer.Option(help="require this API key (none = no key checked)")] = None,
    key_header: Annotated[str, typer.Option(help="header carrying the API key")] = "X-API-Key",
    session_ttl: Annotated[float, typer.Option(help="seconds of inactivity before a session expires")] = 600.0,
    username: Annotated[str | None, typer.Option(help="accept this Bet365 login (with --password)")] = None,
    password: Annotated[str | None, typer.Option(help="its password")] = None,
    delay: Annotated[float, typer.Option(help="every answer waits this long (slow responses)")] = 0.0,
) -> None:
    """Serve recorded Olympus (Bet365) responses behind the Olympus session protocol. Faults at run
    time: POST /_admin/faults {"expire": true, "fail_401": 1, "fail_403": 1, "rate_limit": 1,
    "fail_5xx": 1, "malformed": 1, "delay_seconds": 2}; SIGUSR1 expires every session."""
    import asyncio

    from bot.sim.extra import require_sim_extra

    require_sim_extra("bot feeds serve-olympus")
    from bot.sim.olympus_server import OlympusFaults, OlympusServer, Recorded
    from bot.sim.serving import serve_until_interrupted

    def make() -> OlympusServer:
        return OlympusServer(Recorded.load(recorded), api_key=key, api_key_header=key_header,
                             session_ttl=session_ttl, username=username, password=password,
                             faults=OlympusFaults(delay_seconds=delay))

    def ready(server: OlympusServer, url: str) -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, server.expire_all)
        _console().print(f"serving Olympus on {url} ({len(server.recorded.markets)} events); "
                         "SIGUSR1 expires every session, Ctrl-C stops")

    serve_until_interrupted(make, host, port, ready)
