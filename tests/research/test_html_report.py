"""The HTML report (bot.research.html) and its plots (bot.research.plots), checked as a reader
sees them: the page is opened in a real headless Chromium and its screenshot inspected."""

from __future__ import annotations

import base64
import io
import os
import random
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bot.research.html import write_report
from bot.research.plots import PLOT_FILES, render_all
from bot.research.records import BetRecord
from bot.research.stats import breakdowns, summarise

HOSTILE = '<script>alert("x")</script>'
# The CLV histogram's bars: #1565c0 at alpha 0.75 over white. Only the embedded plot has it.
HIST_BLUE = (80, 140, 208)


def synthetic_bets(n: int = 50, seed: int = 4) -> list[BetRecord]:
    """n bets over three months: mixed outcomes, odds bands and books; every tenth unsettled,
    every seventh without a close; one strategy name is an HTML injection attempt."""
    rng = random.Random(seed)
    t0 = datetime(2024, 1, 5, 18, 0, tzinfo=UTC)
    out = []
    for i in range(n):
        price = round(rng.choice([1.3, 1.8, 2.4, 3.6, 6.5, 12.0]) * rng.uniform(0.95, 1.05), 2)
        stake = Decimal(rng.choice(["10", "20", "25.50"]))
        placed = t0 + timedelta(days=i * 1.8)
        unsettled = i % 10 == 9
        won = rng.random() < 1.05 / price
        pnl = None if unsettled else ((stake * Decimal(str(price - 1))).quantize(Decimal("0.01")) if won else -stake)
        out.append(
            BetRecord(
                bet_id=1000 + i,
                strategy=HOSTILE if i % 5 == 0 else "value",
                bookmaker=rng.choice(["pinnacle", "bet365"]),
                sport="soccer",
                market="1x2",
                selection=rng.choice(["home", "draw", "away"]),
                placed_at=placed,
                start_time=placed + timedelta(hours=20),
                price=price,
                stake=stake,
                status="UNSETTLED" if unsettled else ("WON" if won else "LOST"),
                pnl=pnl,
                settled_at=None if unsettled else placed + timedelta(hours=22),
                closing_price=None,
                closing_probability=None,
                clv=None if i % 7 == 3 else rng.gauss(0.015, 0.04),
            )
        )
    return out


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and Path("/usr/bin/chromium").exists():
        found = "/usr/bin/chromium"
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (CI installs it with apt)")
        pytest.skip("chromium is not installed")
    return found


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[BetRecord]]:
    bets = synthetic_bets()
    out = tmp_path_factory.mktemp("report")
    summary = summarise(bets, Decimal(1000), resamples=2000)
    page = write_report(out, summary, breakdowns(bets), bets, title=f"Backtest {HOSTILE}")
    return page, bets


def _decode_png(data: bytes) -> Image.Image:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG"
    return image


def test_report_is_self_contained_escaped_and_lists_unsettled_bets(report: tuple[Path, list[BetRecord]]) -> None:
    page, bets = report
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text.lower()  # neither ours (no JS needed) nor the hostile name
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    # No external resource: every src/href is a data URI, and no url() in the CSS.
    refs = re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', text)
    assert refs and all(ref.startswith("data:image/png;base64,") for ref in refs)
    assert "url(" not in text and "@import" not in text
    unsettled = [b.bet_id for b in bets if b.pnl is None]
    assert len(unsettled) == 5
    section = text.split("<h2>Unsettled bets</h2>", 1)[1]
    assert all(f"<td>{bet_id}</td>" in section for bet_id in unsettled)


def test_embedded_images_are_the_written_pngs(report: tuple[Path, list[BetRecord]]) -> None:
    page, _ = report
    embedded = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]+)"', page.read_text(encoding="utf-8"))
    assert [name for _, name in embedded] == list(PLOT_FILES)
    for data, name in embedded:
        png = base64.b64decode(data, validate=True)
        assert png == (page.parent / name).read_bytes()
        image = _decode_png(png)
        assert image.width >= 600 and image.height >= 300
        assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50  # a drawing, not a blank


def test_plots_are_deterministic_and_empty_input_draws_no_data() -> None:
    bets = synthetic_bets()
    first = render_all(bets, Decimal(1000))
    assert render_all(bets, Decimal(1000)) == first
    empty = render_all([], Decimal(1000))
    assert list(empty) == list(PLOT_FILES)
    for png in empty.values():
        assert _decode_png(png).width >= 600
    assert all(empty[name] != first[name] for name in PLOT_FILES)


def test_report_renders_in_headless_chromium(report: tuple[Path, list[BetRecord]], tmp_path: Path) -> None:
    page, _ = report
    shot = tmp_path / "shot.png"
    command = [
        _chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2400",
        page.resolve().as_uri(),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    image = _decode_png(shot.read_bytes()).convert("RGB")
    assert image.size == (1280, 2400)
    pixels = np.asarray(image, dtype=np.int32).reshape(-1, 3)
    assert (pixels.min(axis=1) < 240).mean() > 0.10  # not blank
    assert len(image.getcolors(maxcolors=1 << 24) or []) > 500  # text, tables and plots, not a flat page
    # The browser decoded the embedded plots: the histogram's bar colour is on screen.
    hist = int((np.abs(pixels - np.array(HIST_BLUE)) <= 3).all(axis=1).sum())
    assert hist > 2000, hist
