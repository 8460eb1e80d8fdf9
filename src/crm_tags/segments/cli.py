"""`crm-tags segments`: validate the segments file, preview a condition, export a segment.

    crm-tags segments validate [FILE]
    crm-tags segments preview "customer_grade = 'vip' and purchase_frequency = 'high'" [--json]
    crm-tags segments export CODE --format csv|parquet --out PATH [--include-personal-data]
    crm-tags segments exports [--json]          the export log

Preview and export read the published warehouse ($CRM_WAREHOUSE_PATH, default
data/warehouse.duckdb), read-only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from crm_tags.build import DEFAULT_WAREHOUSE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    warehouse = argparse.ArgumentParser(add_help=False)
    warehouse.add_argument(
        "--warehouse", type=Path,
        default=Path(os.environ.get("CRM_WAREHOUSE_PATH", DEFAULT_WAREHOUSE)),
        help="the published warehouse (default: $CRM_WAREHOUSE_PATH or data/warehouse.duckdb)")
    sub = parser.add_subparsers(dest="segments_command", required=True, metavar="SUBCOMMAND")

    validate = sub.add_parser(
        "validate", parents=[warehouse], help="check the segments file against the catalog",
        description="Check a segments file (default: segments/segments.yml or "
                    "$CRM_SEGMENTS_FILE) against the tag catalog; the category values against "
                    "the categories the warehouse knows.")
    validate.add_argument("file", nargs="?", type=Path, default=None)
    validate.set_defaults(_segments=_validate)

    preview = sub.add_parser(
        "preview", parents=[warehouse], help="count the customers a condition selects",
        description="Count, share, a sample and the customer_grade split of the customers a "
                    "condition selects, on the published warehouse (read-only).")
    preview.add_argument("expression", help="a where condition, e.g. \"customer_grade = 'vip'\"")
    preview.add_argument("--json", action="store_true", help="print one JSON object")
    preview.add_argument("--sample", type=int, default=10, help="sample size (default 10)")
    preview.set_defaults(_segments=_preview)

    export = sub.add_parser(
        "export", parents=[warehouse], help="write a segment's members for a campaign tool",
        description="Write a segment's members with their contact channels. Personal data "
                    "(names, emails, phones) only with --include-personal-data; every export "
                    "is logged (crm-tags segments exports).")
    export.add_argument("code", help="the segment code")
    export.add_argument("--format", choices=["csv", "parquet"], required=True)
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--include-personal-data", action="store_true",
                        help="one row per contact with account name, contact name, email and "
                             "phone (personal data: keep the file accordingly)")
    export.add_argument("--include-holdout", action="store_true",
                        help="also the holdout members (flagged is_holdout), which a campaign "
                             "must not reach")
    export.set_defaults(_segments=_export)

    exports = sub.add_parser("exports", parents=[warehouse], help="show the export log",
                             description="The export log: who exported which segment when, "
                                         "where to, and whether with personal data.")
    exports.add_argument("--json", action="store_true", help="one JSON object per line")
    exports.set_defaults(_segments=_exports)


def run(args: argparse.Namespace) -> int:
    return int(args._segments(args) or 0)


def _validate(args: argparse.Namespace) -> int:
    from crm_tags.segments.check import check_segments
    from crm_tags.segments.definitions import SegmentDefinitionError

    try:
        file = check_segments(args.file, warehouse=args.warehouse)
    except SegmentDefinitionError as error:
        print(error, file=sys.stderr)
        return 1
    order = [s.code for s in file.evaluation_order()]
    print(f"{file.path}: {len(file.segments)} segment(s) valid"
          + (f", computed in this order: {', '.join(order)}" if order else ""))
    for plist in file.priority_lists:
        print(f"  priority list {plist.code}: {' > '.join(plist.segments)}")
    for note in file.notes:
        print(f"  note: {note}")
    return 0


def _preview(args: argparse.Namespace) -> int:
    from crm_tags.segments.preview import PreviewError, preview

    try:
        result = preview(args.warehouse, args.expression, sample_size=args.sample)
    except PreviewError as error:
        if args.json:
            print(json.dumps({"expression": args.expression, "error": str(error)},
                             ensure_ascii=False))
        print(error, file=sys.stderr)
        return 1
    print(json.dumps(result.to_json(), ensure_ascii=False) if args.json else result.report())
    return 0


def _export(args: argparse.Namespace) -> int:
    from crm_tags.segments.export import ExportError, export_log_path, export_segment

    try:
        record = export_segment(args.warehouse, args.code, args.out, args.format,
                                personal_data=args.include_personal_data,
                                include_holdout=args.include_holdout)
    except ExportError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"Wrote {record.members:,} members of {record.segment_code} "
          f"(as of {record.as_of_date}, {record.rows:,} rows) to {args.out} ({record.format}).")
    if not record.holdout_included:
        print("Holdout members (the control group) are left out; --include-holdout adds them, "
              "flagged is_holdout.")
    if record.personal_data:
        print("PERSONAL DATA: the file holds " + ", ".join(record.personal_columns)
              + ". Store and share it as personal data; delete it when the campaign is done.")
    else:
        print("No personal data: names, emails and phones are written only with "
              "--include-personal-data.")
    print(f"Logged in {export_log_path(args.warehouse)}.")
    return 0


def _exports(args: argparse.Namespace) -> int:
    from crm_tags.segments.export import export_log_path, read_log

    log = export_log_path(args.warehouse)
    records = read_log(log)
    if args.json:
        for record in records:
            print(json.dumps(record, ensure_ascii=False))
        return 0
    if not records:
        print(f"No export logged in {log}.")
        return 0
    print(f"Exports logged in {log}:")
    for r in records:
        personal = "PERSONAL DATA (" + ", ".join(r["personal_columns"]) + ")" \
            if r["personal_data"] else "no personal data"
        print(f"  {r['exported_at']}  {r['user']}@{r['host']}  {r['segment_code']} "
              f"(as of {r['as_of_date']})  {r['rows']:,} rows  {r['format']} -> {r['path']}  "
              f"{personal}")
    return 0
