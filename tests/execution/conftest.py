"""Shared fixtures: a local ABP server on a loopback port (in this test's event loop)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.execution.config import AbpConfig, PaperConfig
from bot.sim.abp_server import Faults, LocalAbpServer

OPENAPI = Path(__file__).parents[1] / "data" / "abp" / "abp-openapi.json"
API_KEY = "local-test-key"


@pytest.fixture
async def server() -> AsyncIterator[LocalAbpServer]:
    srv = LocalAbpServer(
        api_key=API_KEY, paper=PaperConfig(default_max_stake=500, default_min_stake=1), faults=Faults(),
        ping_seconds=0.2, bookmakers=["paper"], accounts=[],  # the book the intents name; no accounts yet
    )
    srv.base_url = await srv.start()
    yield srv
    await srv.stop()


def abp_config(server: LocalAbpServer, **kw: Any) -> AbpConfig:
    base = {
        "base_url": server.base_url, "ws_url": server.base_url.replace("http", "ws") + "/ws",
        "api_key": API_KEY, "timeout_seconds": 1.0, "requests_per_second": 500.0,
        "backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.05,
        "ws_ping_seconds": 0.2, "ws_reconnect_initial_seconds": 0.02, "ws_reconnect_max_seconds": 0.1,
        "emergency_wait_seconds": 0.2, "ws_gap_wait_seconds": 0.3,
    }
    base.update(kw)
    return AbpConfig(**base)


def _nullable_to_type_list(node: Any) -> Any:
    """OpenAPI 3.0-style `nullable: true` (used in the R1 file, docs/reference/abp.md) as JSON-Schema
    `type: [T, "null"]`."""
    if isinstance(node, dict):
        out = {k: _nullable_to_type_list(v) for k, v in node.items() if k != "nullable"}
        if node.get("nullable") and isinstance(node.get("type"), str):
            out["type"] = [node["type"], "null"]
        return out
    if isinstance(node, list):
        return [_nullable_to_type_list(v) for v in node]
    return node


@pytest.fixture(scope="session")
def openapi() -> dict[str, Any]:
    return _nullable_to_type_list(json.loads(OPENAPI.read_text()))
