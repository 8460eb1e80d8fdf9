"""The main job (`crm-tags demo`): generate a demo landing zone, build, validate, summarise.

`crm-tags summary` prints the summary of an existing warehouse.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import duckdb

from crm_tags.build import DEFAULT_RAW_DIR, DEFAULT_WAREHOUSE, DbtError
from crm_tags.warehouse_lock import WarehouseLocked, explain_lock_error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--as-of", default=dt.date.today().isoformat(), help="run date YYYY-MM-DD")
    parser.add_argument("--dirty", type=float, default=0.0, help="dirt rate for the generated data")
    parser.add_argument("--raw-dir", type=Path, default=DEFAULT_RAW_DIR)
    parser.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE)
    parser.add_argument("--reuse-data", action="store_true", help="keep an existing landing zone")
    parser.add_argument("--history-days", type=int, default=1,
                        help="first build as of this many days before --as-of, so the tag "
                             "history shows the moves between the two runs (0: one build)")


def add_summary_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE)


def run(args: argparse.Namespace) -> int:
    from crm_tags.generate import generate_landing_zone
    from crm_tags.privacy import bi_path, ensure_key, erasure_log_path, key_file

    # Publishing pseudonymises the BI file with a key that never lives in the repository: on a
    # fresh machine the demo makes one in the user's config dir (docs/privacy.md).
    made = ensure_key()
    if made:
        print(f"generated a masking key at {made} (outside the repository; keep it: the BI "
              "file's pseudonyms stay the same only with the same key)")
    else:
        print(f"masking key: $CRM_MASKING_KEY or {key_file()}")
    timings: dict[str, float] = {}
    if not (args.reuse_data and args.raw_dir.exists()):
        start = time.perf_counter()
        counts = generate_landing_zone(
            args.raw_dir, args.customers, seed=args.seed, as_of=dt.date.fromisoformat(args.as_of), dirty=args.dirty
        )
        timings["generate"] = time.perf_counter() - start
        print(f"generated {args.customers:,} customers into {args.raw_dir} ({_rows(counts):,} rows)")

    start = time.perf_counter()
    try:
        # a freshly generated landing zone replaces the old one: rebuild rather than refresh
        full_refresh = "generate" in timings
        gate_passed = True
        if args.history_days > 0:
            # an earlier run date first: the tag history then holds two runs and their moves
            earlier = dt.date.fromisoformat(args.as_of) - dt.timedelta(days=args.history_days)
            gate_passed = _build_validate_publish(args.raw_dir, args.warehouse, earlier.isoformat(),
                                                  full_refresh=full_refresh)
            full_refresh = False
        gate_passed = _build_validate_publish(args.raw_dir, args.warehouse, args.as_of,
                                              full_refresh=full_refresh) and gate_passed
    except DbtError as error:
        print(error, file=sys.stderr)
        return 1
    timings["build + gate"] = time.perf_counter() - start

    if not gate_passed:
        print("quality gate failed: the last good marts stay published", file=sys.stderr)
    if args.warehouse.exists():
        try:
            print_summary(args.warehouse)
        except WarehouseLocked as error:
            print(error, file=sys.stderr)
            return 1
    if bi_path(args.warehouse).exists():
        print(f"\nBI tools connect to {bi_path(args.warehouse)}: schema marts only, personal "
              "columns pseudonymised (docs/privacy.md). `crm-tags forget CUSTOMER_ID --reason "
              f"TEXT` records an erasure request in {erasure_log_path(args.warehouse)}; the next "
              "run clears the customer from the marts, the segments, the exports and the BI "
              "file.")
    print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))
    return 0 if gate_passed else 1


def _build_validate_publish(raw_dir: Path, warehouse: Path, as_of: str,
                            full_refresh: bool = False) -> bool:
    """Build into a candidate file, run the quality gate, publish only if it passes."""
    from crm_tags.quality.publish import build_and_publish

    result = build_and_publish(raw_dir, warehouse, as_of, full_refresh=full_refresh)
    print(result.report())
    return bool(result.passed)


def _rows(counts: dict) -> int:
    return sum(v for k, v in counts.items() if isinstance(v, int) and "/" in k)


def run_summary(args: argparse.Namespace) -> int:
    try:
        print_summary(args.warehouse)
    except WarehouseLocked as error:
        print(error, file=sys.stderr)
        return 1
    return 0


def print_summary(warehouse: Path) -> None:
    """Customers per tag value (with labels), and the landing-zone reconciliation. Read-only:
    BI connections do not stop it; a process writing the file does (WarehouseLocked)."""
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.IOException as error:
        locked = explain_lock_error(str(error))
        if locked:
            raise WarehouseLocked(f"Cannot read the summary now: {locked}") from None
        raise
    with con:
        customers, as_of = con.sql("select count(*), max(as_of_date) from marts.customer_profile").fetchone()
        print(f"\nTag summary as of {as_of}: {customers:,} customers\n")
        rows = con.sql("""
            select t.tag_code, t.tag_value, any_value(t.tag_value_label_zh), any_value(t.tag_value_label_en),
                   count(*) as customers
            from marts.customer_tags t
            group by t.tag_code, t.tag_value
            order by t.tag_code, customers desc, t.tag_value
        """).fetchall()
        last_code = None
        for code, value, zh, en, n in rows:
            label = code if code != last_code else ""
            share = n / customers if customers else 0
            print(f"  {label:<20} {value:<22} {zh:<10} {en:<24} {n:>9,} {share:>7.1%}")
            last_code = code
        print_segments(con)
        print_history(con)
        print("\nLanding zone reconciliation (rows in = kept + rejected + superseded):\n")
        for table, rows_in, kept, rejected, superseded, balanced in con.sql("""
            select source_table, rows_in, rows_kept, rows_rejected, duplicates_superseded, is_balanced
            from audit.reconciliation order by source_table
        """).fetchall():
            mark = "ok" if balanced else "IMBALANCED"
            print(f"  {table:<28} {rows_in:>11,} = {kept:>11,} + {rejected:>8,} + {superseded:>8,}  {mark}")


def print_segments(con: duckdb.DuckDBPyConnection) -> None:
    """The segments (segments/segments.yml) with their members, when the warehouse has them."""
    tables = {row[0] for row in con.sql(
        "select table_name from information_schema.tables where table_schema = 'marts'").fetchall()}
    if "segment_catalog" not in tables:
        return
    rows = con.sql("""
        select segment_code, label_zh, label_en, member_count, share, holdout_count,
               priority_list, priority_rank, definition, as_of_date
        from marts.segment_catalog order by segment_code
    """).fetchall()
    as_of = rows[0][-1] if rows else None
    print(f"\nSegments as of {as_of}: members and share of the customers "
          "(crm-tags segments preview \"CONDITION\" tries another):\n")
    for code, zh, en, members, share, holdout, plist, rank, definition, _ in rows:
        extra = f"  holdout {holdout:,}" if holdout else ""
        if plist:
            extra += f"  [{plist} #{rank}]"
        print(f"  {code:<38} {zh:<10} {en:<24} {members:>9,} {float(share or 0):>7.1%}{extra}")
        print(f"  {'':<38} where {' '.join(definition.split())}")


def print_history(con: duckdb.DuckDBPyConnection, tags: tuple[str, ...] = ("lifecycle_stage", "customer_grade")) -> None:
    """The tag history (docs/history.md): its size, and the latest run's moves of `tags`."""
    tables = {row[0] for row in con.sql(
        "select table_name from information_schema.tables where table_schema = 'marts'").fetchall()}
    if "tag_transitions" not in tables:
        return
    periods, runs, first = con.sql(
        "select count(*), count(distinct valid_from), min(valid_from) "
        "from marts.customer_tag_history").fetchone()
    print(f"\nTag history: {periods:,} periods in marts.customer_tag_history, {runs} run date(s) "
          f"since {first} (the tags valid on D: valid_from <= D and (valid_to is null or "
          "valid_to > D)); crm-tags backfill fills past dates.")
    for tag in tags:
        latest = con.execute("select max(as_of_date) from marts.tag_runs where tag_code = ?",
                             [tag]).fetchone()[0]
        rows = con.execute("""
            select coalesce(from_value, '(entered)'), coalesce(to_value, '(exited)'), customer_count
            from marts.tag_transitions where tag_code = ? and as_of_date = ?
            order by customer_count desc, 1, 2 limit 8
        """, [tag, latest]).fetchall()
        print(f"\n  {tag} transitions on {latest} (marts.tag_transitions):")
        for source, target, n in rows:
            print(f"    {source:<14} -> {target:<14} {n:>9,}")
        if not rows:
            print("    (no customer moved)")
