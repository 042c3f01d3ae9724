"""Builds `kc_phi_week2.csv.gz`, the generic long odds CSV (docs/reference/odds-csv.md) of one
real game, from the change-log extract beside it (../oddsapi/, see README.md):

    python tests/data/history/odds_csv/build_kc_phi.py

Every change-log row of Chiefs v Eagles (2025-09-14) becomes a generic row: h2h -> moneyline,
spreads -> spread, totals -> total; the outcome home / away / over / under; `line` the point as
written (the named outcome's handicap); `removed` -> an empty price. A point that moves also
writes an empty-price row for the old line, since a generic quote is keyed by its line. Books
BOOKS_DECIMAL get decimal `price` (the exact float of the American odds), the others
`price_american`; `side` is blank or `back`. The rows are then shuffled (fixed seed): the format
does not need time order.
"""

from __future__ import annotations

import csv
import gzip
import io
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent / "oddsapi" / "nfl_odds_changes_week2.csv.gz"
EVENT = "bbec8d71145954cff67915c9b006bb6e"
BOOKS_DECIMAL = frozenset({"draftkings", "fanduel", "lowvig"})
MARKETS = {"h2h": "moneyline", "spreads": "spread", "totals": "total"}
HEADER = ["time", "sport", "fixture_id", "start_time", "home", "away", "market", "line", "outcome", "bookmaker",
          "price", "price_american", "side"]


def decimal(american: int) -> float:
    return 1 + american / 100 if american > 0 else 1 - 100 / american


def main() -> None:
    with gzip.open(SOURCE, "rt", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["event_id"] == EVENT]
    lines: dict[tuple[str, str, str], str] = {}
    out: list[list[str]] = []
    for n, r in enumerate(rows):
        outcome = ("home" if r["outcome"] == r["home_team"] else "away" if r["outcome"] == r["away_team"]
                   else r["outcome"].lower())
        key = (r["book"], r["market"], outcome)
        base = [r["observed_utc"], "NFL", r["event_id"], r["commence_time"], r["home_team"], r["away_team"],
                MARKETS[r["market"]]]
        side = "back" if n % 3 == 0 else ""
        old = lines.get(key)
        if r["change"] == "removed" or (old is not None and old != r["point"]):
            out.append([*base, old or "", outcome, r["book"], "", "", side])
        if r["change"] == "removed":
            lines.pop(key, None)
            continue
        lines[key] = r["point"]
        american = int(r["price_american"])
        price, price_american = (repr(decimal(american)), "") if r["book"] in BOOKS_DECIMAL else ("", f"{american:+d}")
        out.append([*base, r["point"], outcome, r["book"], price, price_american, side])
    random.Random(20250914).shuffle(out)
    with open(HERE / "kc_phi_week2.csv.gz", "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
            with io.TextIOWrapper(gz, encoding="utf-8", newline="") as text:
                writer = csv.writer(text, lineterminator="\n")
                writer.writerow(HEADER)
                writer.writerows(out)


if __name__ == "__main__":
    main()
