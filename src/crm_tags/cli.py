"""`crm-tags`: one entry point, one subcommand per job.

Each subcommand lives in its own module exposing `add_arguments(parser)` and `run(args) -> int`;
modules are imported lazily so `crm-tags generate` does not pay for dagster or GX imports.
"""

from __future__ import annotations

import argparse
import importlib
import sys

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("crm_tags.generate", "write a synthetic landing zone following the raw-sources contract"),
    "build": ("crm_tags.build", "build, gate and publish the warehouse for one as_of_date"),
    "backfill": ("crm_tags.backfill", "compute the tags as of past run dates and write their history (gated, one build per date)"),
    "demo": ("crm_tags.demo", "main job: generate demo data, build, validate, print a tag summary"),
    "summary": ("crm_tags.demo", "print the tag summary of the current warehouse"),
    "validate": ("crm_tags.quality.validate", "run the Great Expectations quality gate on the warehouse, or build, gate and publish"),
    "ltv-fit": ("crm_tags.ltv", "fit BG/NBD and Gamma-Gamma on a customer summary CSV"),
    "docs": ("crm_tags.docs", "write the dbt docs site (one offline HTML page) and check it documents everything"),
    "load": ("crm_tags.load", "copy new delivery files into PostgreSQL's raw tables (the postgres target; docs/engines.md)"),
    "ltv-calibration": ("crm_tags.ltv_calibration", "the LTV model's hold-out check per frequency bucket (CDNOW, a transaction CSV, or a warehouse)"),
    "bench": ("crm_tags.bench", "benchmark the build against a hand-written DuckDB reference"),
    "dagster-dev": ("crm_tags.dagster_dev", "start the Dagster UI on the demo warehouse"),
    "segments": ("crm_tags.segments.cli", "validate, preview and export segments (docs/segments.md)"),
    "forget": ("crm_tags.privacy", "record an erasure request: the customer leaves every mart from the next run (docs/privacy.md)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crm-tags", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    argv = sys.argv[1:] if argv is None else argv
    # Only the chosen subcommand's module is imported (its arguments are registered on demand).
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            module = importlib.import_module(module_name)
            module.add_arguments(p) if name != "summary" else module.add_summary_arguments(p)
            p.set_defaults(_run=module.run if name != "summary" else module.run_summary)
    args = parser.parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
