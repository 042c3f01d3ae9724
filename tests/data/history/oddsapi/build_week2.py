"""Builds the week-2 extract of The Odds API NFL change log (see README.md):

    python tests/data/history/oddsapi/build_week2.py /path/to/oddsapi_nfl_2025

- `nfl_odds_changes_week2.csv.gz`: every row, unchanged (same header, same order), of three
  games of NFL week 2: Packers v Commanders, Jets v Bills, Chiefs v Eagles (EVENTS);
- `nfl_odds_changes_week2_snapshot_times.txt`: the season's snapshot times from START to END,
  one a line, as in `nfl_odds_changes_snapshot_times.txt`.
"""

from __future__ import annotations

import csv
import gzip
import io
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
EVENTS = frozenset({"0c6e5d9821ce0d3e82f3e792879776a6", "cd0fd9335b5182d3bfed35ab8d5ab6fb",
                    "bbec8d71145954cff67915c9b006bb6e"})
START, END = "2025-09-10T00:00:00Z", "2025-09-16T00:00:00Z"


def main(folder: Path) -> None:
    with gzip.open(folder / "nfl_odds_changes.csv.gz", "rt", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        kept = [row for row in reader if row[2] in EVENTS]
    with open(HERE / "nfl_odds_changes_week2.csv.gz", "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:  # mtime=0: same input, same bytes
            with io.TextIOWrapper(gz, encoding="utf-8", newline="") as text:
                writer = csv.writer(text, lineterminator="\n")
                writer.writerow(header)
                writer.writerows(kept)
    times = [t.strip() for t in (folder / "nfl_odds_changes_snapshot_times.txt").read_text().split()]
    (HERE / "nfl_odds_changes_week2_snapshot_times.txt").write_text(
        "".join(f"{t}\n" for t in times if START <= t <= END))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
