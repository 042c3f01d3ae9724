"""Rebuilds `odds.csv` (see README.md here) from the shared season files.

    .venv/bin/python tests/data/history_cli/build_odds_csv.py /work/shared/data
"""

from __future__ import annotations

import csv
import gzip
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
HEADER = ["time", "sport", "fixture_id", "start_time", "home", "away", "market", "line", "outcome", "bookmaker",
          "price", "price_american"]
# D1 2023/24 matches with quarter Asian handicap lines (1.75, -0.25, -0.75, -1.25, 0.25)
MATCHES = {("18/08/2023", "Werder Bremen"), ("19/08/2023", "Hoffenheim"), ("19/08/2023", "Stuttgart"),
           ("19/08/2023", "Dortmund"), ("26/08/2023", "FC Koln"), ("26/08/2023", "Heidenheim")}
BOOKS = {"bet365": ("B365", "B365", "B365"), "pinnacle": ("PS", "P", "P")}  # 1x2, O/U, AH column prefixes
EVENT = "f0bdd27bbed46dfc3d0657500c95a96c"  # Atlanta Falcons v Seattle Seahawks, 2025-12-07
UNTIL = "2025-11-25T22:23:17Z"  # its first 39 change-log rows, the mybookieag removal included


def iso(ts: datetime) -> str:
    return ts.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%dT%H:%M:%SZ")


def football(shared: Path) -> list[list[str]]:
    rows: list[list[str]] = []
    path = shared / "football_data_top5_2019_2024" / "top5_leagues_2019-20_to_2023-24.csv.gz"
    with gzip.open(path, "rt", newline="") as f:
        for r in csv.DictReader(f):
            if r["Div"] != "D1" or r["Season"] != "2023/2024" or (r["Date"], r["HomeTeam"]) not in MATCHES:
                continue
            kickoff = datetime.strptime(f"{r['Date']} {r['Time']}", "%d/%m/%Y %H:%M").replace(
                tzinfo=ZoneInfo("Europe/London"))
            base = ["soccer", "", iso(kickoff), r["HomeTeam"], r["AwayTeam"]]
            # opening odds stated 48 h before kickoff, closing 5 min before (the source has no time)
            for at, c in ((kickoff - timedelta(hours=48), ""), (kickoff - timedelta(minutes=5), "C")):
                for book, (x12, ou, ah) in BOOKS.items():
                    ah_line = r[f"AH{c}h"]
                    away_line = str(-float(ah_line)) if ah_line else ""
                    quotes = [("1x2", "", "home", r[f"{x12}{c}H"]), ("1x2", "", "draw", r[f"{x12}{c}D"]),
                              ("1x2", "", "away", r[f"{x12}{c}A"]),
                              ("total", "2.5", "over", r[f"{ou}{c}>2.5"]), ("total", "2.5", "under", r[f"{ou}{c}<2.5"]),
                              ("spread", ah_line, "home", r[f"{ah}{c}AHH"]),
                              ("spread", away_line, "away", r[f"{ah}{c}AHA"])]
                    for market, line, outcome, price in quotes:
                        rows.append([iso(at), *base, market, line, outcome, book, price, ""])
    return rows


def nfl() -> list[list[str]]:
    rows: list[list[str]] = []
    markets = {"h2h": "moneyline", "spreads": "spread", "totals": "total"}
    points: dict[tuple[str, str, str], str] = {}  # a removal states no point: the quote's last one
    with gzip.open(ROOT / "tests" / "data" / "oddsapi" / "nfl_odds_changes_2025-12-07.csv.gz", "rt", newline="") as f:
        for r in csv.DictReader(f):
            if r["event_id"] != EVENT or r["observed_utc"] > UNTIL:
                continue
            key = (r["book"], r["market"], r["outcome"])
            point = points[key] = r["point"] or points.get(key, "")
            outcome = {r["home_team"]: "home", r["away_team"]: "away"}.get(r["outcome"], r["outcome"].lower())
            rows.append([r["observed_utc"], "NFL", r["event_id"], r["commence_time"], r["home_team"], r["away_team"],
                         markets[r["market"]], point, outcome, r["book"], "", r["price_american"]])
    return rows


def main() -> None:
    rows = football(Path(sys.argv[1])) + nfl()
    with (HERE / "odds.csv").open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(rows)
        # bad rows, one of each kind the counts are checked for (README.md)
        w.writerow(["2023-08-17T17:25:00Z", "soccer", "", "2023-08-18T18:30:00Z", "Werder Bremen", "Bayern Munich",
                    "1x2", "", "home", "bet365", "abc", ""])
        w.writerow(["2023-08-17T17:25:00Z", "soccer", "", "2023-08-18T18:30:00Z", "Werder Bremen", "Bayern Munich",
                    "btts", "", "yes", "bet365", "1.5", ""])
        w.writerow(["yesterday", "soccer", "", "2023-08-18T18:30:00Z", "Werder Bremen", "Bayern Munich",
                    "1x2", "", "home", "bet365", "1.5", ""])


if __name__ == "__main__":
    main()
