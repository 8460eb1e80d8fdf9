"""`crm-tags dagster-dev`: the Dagster UI and daemons on the demo warehouse.

Prepares the dbt manifest, keeps run history in a project-local DAGSTER_HOME (`.dagster_home/`,
git-ignored) whose dagster.yaml lets one run at a time write the warehouse, and replaces this
process with `dagster dev -m orchestration.definitions`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from crm_tags import PROJECT_DIR
from crm_tags.build import DEFAULT_RAW_DIR, DEFAULT_WAREHOUSE

DEFAULT_DAGSTER_HOME = PROJECT_DIR / ".dagster_home"

DAGSTER_YAML = """\
# Written by `crm-tags dagster-dev` when missing; yours to edit, never overwritten.
concurrency:
  # DuckDB lets one process write a file: every op that writes (or audits) the warehouse is in
  # pool `crm_warehouse`, and a run holding it runs alone; the others wait in the queue.
  pools:
    granularity: run
    default_limit: 1
  runs:
    # runs that touch no warehouse (observing the landing zone) may overlap a build
    max_concurrent_runs: 4
telemetry:
  enabled: false
# no "join the community" dialog on a project-local instance
nux:
  enabled: false
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument(
        "--dagster-home",
        type=Path,
        default=Path(os.environ.get("DAGSTER_HOME", DEFAULT_DAGSTER_HOME)),
    )
    parser.add_argument(
        "--raw-dir", type=Path, default=Path(os.environ.get("CRM_RAW_DIR", DEFAULT_RAW_DIR))
    )
    parser.add_argument(
        "--warehouse",
        type=Path,
        default=Path(os.environ.get("CRM_WAREHOUSE_PATH", DEFAULT_WAREHOUSE)),
        help="the published warehouse BI tools read (runs build a .candidate.duckdb next to it)",
    )


def prepare(args: argparse.Namespace) -> tuple[list[str], dict[str, str]]:
    """Write DAGSTER_HOME/dagster.yaml if missing; return the `dagster dev` command and its env."""
    home = args.dagster_home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    env = dict(os.environ)
    env.update(
        {
            "DAGSTER_HOME": str(home),
            "CRM_RAW_DIR": str(args.raw_dir.resolve()),
            "CRM_WAREHOUSE_PATH": str(args.warehouse.resolve()),
        }
    )
    dagster = str(Path(sys.executable).with_name("dagster"))
    command = [
        dagster,
        "dev",
        "-m",
        "orchestration.definitions",
        "-d",
        str(PROJECT_DIR),
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    return command, env


def run(args: argparse.Namespace) -> int:
    command, env = prepare(args)
    os.environ.update(env)
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    from orchestration.project import prepare_manifest  # after the env: it reads the paths

    print(f"dbt manifest: {prepare_manifest(force=True)}")
    if not args.warehouse.exists():
        print(
            f"note: no warehouse at {args.warehouse} yet; `make demo` builds one, or run the "
            "`full_build` job in the UI first (the cadence jobs read the other cadences' tags).",
            file=sys.stderr,
        )
    print(f"DAGSTER_HOME={env['DAGSTER_HOME']}; UI at http://{args.host}:{args.port}")
    sys.stdout.flush()
    os.execve(command[0], command, env)  # never returns; Ctrl-C goes straight to dagster
