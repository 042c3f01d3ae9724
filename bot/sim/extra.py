"""The `sim` extra: the packages the local servers run on (starlette, uvicorn), installed with
`pip install 'betbot[sim]'` (docs/architecture.md, "Simulators"). A command that starts a local
server checks for it first, so a missing extra is one line and exit status 2, not a traceback.
"""

from __future__ import annotations

import importlib

import typer

SIM_MODULES = ("starlette", "uvicorn")
INSTALL = "pip install 'betbot[sim]'"


def require_sim_extra(command: str) -> None:
    """Return when the `sim` extra is importable; else print one line and exit 2.

    The simulators ship as one extra, so every server command asks for all of it, also the
    BoltOdds server, which itself runs on `websockets` (a runtime dependency).
    """
    for module in SIM_MODULES:
        try:
            importlib.import_module(module)
        except ImportError:
            typer.echo(f"{command} needs the simulators: {INSTALL}", err=True)
            raise typer.Exit(2) from None
