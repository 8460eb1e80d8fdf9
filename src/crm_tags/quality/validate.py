"""`crm-tags validate`: the quality gate on a warehouse, or write-audit-publish with it.

    crm-tags validate                        # audit the warehouse in place (read-only)
    crm-tags validate --build-and-publish    # build a candidate, audit it, publish if it passes
    CRM_TARGET=postgres crm-tags validate    # the gate in the postgres target's database

The gate is crm_tags.quality.gate; write-audit-publish is crm_tags.quality.publish, which
imports the gate (never the other way round). This module is the one place that uses both.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from crm_tags import PROJECT_DIR
from crm_tags.quality.gate import DEFAULT_RUNTIME_DIR, DEFAULT_WAREHOUSE, POLICY, run_gate


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--warehouse", type=Path,
        default=Path(os.environ.get("CRM_WAREHOUSE_PATH", DEFAULT_WAREHOUSE)),
        help="DuckDB warehouse to validate, or to publish to with --build-and-publish "
             "(default: $CRM_WAREHOUSE_PATH or data/warehouse.duckdb)")
    parser.add_argument("--manifest", type=Path, default=None,
                        help="dbt manifest.json for the lineage check (default: dbt parse now)")
    parser.add_argument("--runtime-dir", type=Path, default=DEFAULT_RUNTIME_DIR,
                        help="GX runtime projects, results and Data Docs, one site per warehouse "
                             "(default: expectations/uncommitted)")
    parser.add_argument("--policy", type=Path, default=POLICY,
                        help="the steward's numbers (default: expectations/gate.yml); a copy lets "
                             "one run publish an intended change, e.g. a higher swing limit")
    parser.add_argument("--no-docs", action="store_true", help="skip building Data Docs")
    parser.add_argument(
        "--build-and-publish", action="store_true",
        help="write-audit-publish: dbt build into a candidate file next to --warehouse, gate "
             "it, and replace --warehouse only when the gate passes")
    parser.add_argument("--raw-dir", type=Path,
                        default=Path(os.environ.get("CRM_RAW_DIR", PROJECT_DIR / "data" / "raw")),
                        help="landing zone for --build-and-publish")
    parser.add_argument("--as-of", default=None, help="run date for --build-and-publish")
    parser.add_argument("--full-refresh", action="store_true",
                        help="with --build-and-publish: rebuild the candidate from scratch instead "
                             "of refreshing a copy of the published warehouse incrementally")


def run(args: argparse.Namespace) -> int:
    from crm_tags.build import current_target

    engine = current_target()  # $CRM_TARGET: on postgres the gate runs in the server
    if args.build_and_publish:
        from crm_tags.build import DbtError
        from crm_tags.quality.publish import build_and_publish  # on postgres: the bi schema

        try:
            published = build_and_publish(args.raw_dir, args.warehouse, args.as_of,
                                          runtime_dir=args.runtime_dir, policy=args.policy,
                                          full_refresh=args.full_refresh)
        except DbtError as error:
            print(f"{error}\nNOT published: {args.warehouse} still holds the last good marts.",
                  file=sys.stderr)
            return 1
        print(published.report())
        return 0 if published.published else 1
    result = run_gate(args.warehouse, manifest=args.manifest, runtime_dir=args.runtime_dir,
                      policy=args.policy, build_docs=not args.no_docs, engine=engine)
    print(result.report())
    return 0 if result.passed else 1


if __name__ == "__main__":  # pragma: no cover
    _parser = argparse.ArgumentParser(prog="crm-tags validate")
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
