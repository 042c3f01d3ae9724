"""Builds the two 2025-12-07 NFL test files from the season change log (see README.md).

    python tests/data/oddsapi/build_nfl_2025-12-07.py /path/to/oddsapi_nfl_2025/nfl_odds_changes.csv.gz \
        /path/to/oddsapi_nfl_2025/nfl_odds_changes_snapshot_times.txt

- `nfl_odds_changes_2025-12-07.csv.gz`: the change-log rows, unchanged, of the 12 games that
  kicked off between 2025-12-07T00:00Z and 2025-12-08T06:00Z, up to 2025-12-08T08:00Z;
- `nfl_snapshots_2025-12-07.jsonl.gz`: the board of those games at every snapshot time from
  2025-12-07T00:00Z to 2025-12-08T08:00Z, as The Odds API historical snapshots
  (`{"timestamp", "data": [events]}`), by forward-filling each (event_id, book, market, outcome).
"""

from __future__ import annotations

import csv
import gzip
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
START, END = "2025-12-07T00:00:00Z", "2025-12-08T08:00:00Z"
KICKOFF_FROM, KICKOFF_TO = "2025-12-07T00:00:00Z", "2025-12-08T06:00:00Z"


def main(changes: Path, times_file: Path) -> None:
    with gzip.open(changes, "rt", newline="") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    last_kickoff = {r["event_id"]: r["commence_time"] for r in rows}
    games = {e for e, k in last_kickoff.items() if KICKOFF_FROM <= k < KICKOFF_TO}
    kept = [r for r in rows if r["event_id"] in games and r["observed_utc"] <= END]
    with gzip.open(HERE / "nfl_odds_changes_2025-12-07.csv.gz", "wt", newline="") as f:
        writer = csv.DictWriter(f, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(kept)
    times = [t.strip() for t in times_file.read_text().split() if START <= t.strip() <= END]
    state: dict[tuple[str, str, str, str], dict[str, str]] = {}
    events: dict[str, dict[str, str]] = {}  # event id -> its latest row (teams, commence_time)
    pending = iter(kept)
    row = next(pending, None)
    with gzip.open(HERE / "nfl_snapshots_2025-12-07.jsonl.gz", "wt") as out:
        for t in times:
            while row is not None and row["observed_utc"] <= t:
                key = (row["event_id"], row["book"], row["market"], row["outcome"])
                events[row["event_id"]] = row
                if row["change"] == "removed":
                    state.pop(key, None)
                else:
                    state[key] = row
                row = next(pending, None)
            out.write(json.dumps({"timestamp": t, "data": board(state, events)}) + "\n")


def board(state: dict[tuple[str, str, str, str], dict[str, str]], events: dict[str, dict[str, str]]) -> list[dict]:
    tree: dict[str, dict[str, dict[str, list[dict[str, str]]]]] = {}
    for (event_id, book, market, _), r in state.items():
        tree.setdefault(event_id, {}).setdefault(book, {}).setdefault(market, []).append(r)
    data = []
    for event_id, books in tree.items():
        e = events[event_id]
        data.append({
            "id": event_id, "sport_key": "americanfootball_nfl", "sport_title": "NFL",
            "commence_time": e["commence_time"], "home_team": e["home_team"], "away_team": e["away_team"],
            "bookmakers": [
                {"key": book, "last_update": max(r["book_last_update"] for rs in markets.values() for r in rs),
                 "markets": [
                     {"key": market, "last_update": max(r["market_last_update"] for r in rs),
                      "outcomes": [outcome(r) for r in rs]}
                     for market, rs in markets.items()
                 ]}
                for book, markets in books.items()
            ],
        })
    return data


def outcome(r: dict[str, str]) -> dict[str, object]:
    o: dict[str, object] = {"name": r["outcome"], "price": int(r["price_american"])}
    if r["point"]:
        o["point"] = float(r["point"])
    return o


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
