"""`crm-tags backfill`: the tags as they would have been on past run dates, into their history.

Each run date is one gated build (crm_tags.quality.publish.build_and_publish) of the landing
zone as it is now, as of that date: rows dated after it are quarantined as "... after the run
date" and, not being dirt for that run, do not count against the gate's quarantine budget.
Each passing build writes its date into marts.customer_tag_history (and the contact history,
tag transitions, segment history); the history's period logic is order-free, so a backfill
after the daily runs gives the same history as running the dates in order (docs/history.md).
A date whose gate fails adds nothing, and the backfill stops there, naming it.

Refused before anything is built: a run date after today, or before the landing zone's first
delivery (the oldest delivery file): the landing zone cannot say what was known then.
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import os
import sys
from collections.abc import Callable
from pathlib import Path

from crm_tags.build import DEFAULT_RAW_DIR, DEFAULT_WAREHOUSE, DbtError
from crm_tags.contract import landing_tables

EVERY = ("day", "week", "month")


class BackfillRefused(ValueError):
    """The requested run dates cannot be computed from this landing zone (the message says why)."""


def backfill_dates(start: dt.date, end: dt.date, every: str = "day") -> list[dt.date]:
    """Run dates from `start` to `end` (both included when on the stride): every day, every 7
    days, or the same day of every month (the month's last day when it is shorter)."""
    if every not in EVERY:
        raise BackfillRefused(f"--every must be one of {', '.join(EVERY)}, got {every!r}")
    if start > end:
        raise BackfillRefused(f"--from {start} is after --to {end}: nothing to backfill")
    dates, n = [], 0
    while True:
        if every == "day":
            date = start + dt.timedelta(days=n)
        elif every == "week":
            date = start + dt.timedelta(weeks=n)
        else:
            month = start.month - 1 + n
            year, month = start.year + month // 12, month % 12 + 1
            date = dt.date(year, month, min(start.day, calendar.monthrange(year, month)[1]))
        if date > end:
            return dates
        dates.append(date)
        n += 1


def first_delivery(raw_dir: Path) -> dt.date | None:
    """The date of the landing zone's oldest delivery file (its mtime, as the build records it
    in audit.landing_deliveries.delivered_at); None when nothing was delivered."""
    stamps = [
        file.stat().st_mtime
        for table in landing_tables()
        for file in (Path(raw_dir) / table).glob("*.parquet")
    ]
    if not stamps:
        return None
    return dt.datetime.fromtimestamp(min(stamps), dt.UTC).date()


def check_dates(raw_dir: Path, dates: list[dt.date], today: dt.date | None = None) -> None:
    """Raise BackfillRefused, naming the date and the reason, for a date the landing zone
    cannot compute."""
    today = today or dt.date.today()
    late = [d for d in dates if d > today]
    if late:
        raise BackfillRefused(
            f"Run date {late[0]} is after today ({today}): tags cannot be computed for a day "
            "that has not happened yet.")
    first = first_delivery(raw_dir)
    if first is None:
        raise BackfillRefused(f"The landing zone {raw_dir} holds no delivery file: nothing to backfill from.")
    early = [d for d in dates if d < first]
    if early:
        raise BackfillRefused(
            f"Run date {early[0]} is before the landing zone's first delivery ({first}, the "
            f"oldest file in {raw_dir}): what was known then cannot be told from it. Start the "
            f"backfill on {first} or later.")


def backfill(
    raw_dir: Path,
    warehouse: Path,
    start: dt.date,
    end: dt.date,
    every: str = "day",
    *,
    target_path: Path | None = None,
    runtime_dir: Path | None = None,
    policy: Path | None = None,
    quiet: bool = True,
    today: dt.date | None = None,
    progress: Callable[[dt.date, object], None] | None = None,
) -> list:
    """Build, gate and publish each run date in turn; return the PublishResults (the last one
    is not published when a gate failed: the backfill stops there). Raises BackfillRefused
    before building anything for a date the landing zone cannot compute."""
    from crm_tags.quality.publish import build_and_publish

    dates = backfill_dates(start, end, every)
    check_dates(raw_dir, dates, today)
    results = []
    for date in dates:
        result = build_and_publish(raw_dir, warehouse, date, target_path=target_path,
                                   runtime_dir=runtime_dir, policy=policy, quiet=quiet)
        results.append(result)
        if progress:
            progress(date, result)
        if not result.published:
            break
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="start", required=True, type=dt.date.fromisoformat,
                        help="first run date YYYY-MM-DD")
    parser.add_argument("--to", dest="end", required=True, type=dt.date.fromisoformat,
                        help="last run date YYYY-MM-DD (included when on the stride)")
    parser.add_argument("--every", choices=EVERY, default="day",
                        help="one run per day (default), week or month from --from")
    parser.add_argument("--raw-dir", type=Path, default=Path(os.environ.get("CRM_RAW_DIR", DEFAULT_RAW_DIR)))
    parser.add_argument("--warehouse", type=Path,
                        default=Path(os.environ.get("CRM_WAREHOUSE_PATH", DEFAULT_WAREHOUSE)),
                        help="the published warehouse whose history the backfill writes")
    parser.add_argument("--runtime-dir", type=Path, default=None,
                        help="quality gate results and Data Docs (default: expectations/uncommitted)")


def run(args: argparse.Namespace) -> int:
    def progress(date: dt.date, result) -> None:
        state = "published" if result.published else "NOT published"
        print(f"{date}: {state}", flush=True)

    try:
        results = backfill(args.raw_dir, args.warehouse, args.start, args.end, args.every,
                           runtime_dir=args.runtime_dir, progress=progress)
    except BackfillRefused as error:
        print(f"Backfill refused: {error}", file=sys.stderr)
        return 2
    except DbtError as error:
        print(f"{error}\nBackfill stopped: {args.warehouse} keeps the dates published before.",
              file=sys.stderr)
        return 1
    last = results[-1]
    if not last.published:
        print(last.report(), file=sys.stderr)
        print("Backfill stopped at its gate: the history holds the dates before.", file=sys.stderr)
        return 1
    print(f"Backfilled {len(results)} run date(s) into {args.warehouse}: "
          "marts.customer_tag_history, marts.tag_transitions.")
    return 0
