"""`python -m bot` is the `bot` command."""

from bot.cli import app

app(prog_name="bot")
