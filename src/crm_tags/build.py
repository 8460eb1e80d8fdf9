"""Run dbt against a landing zone and a warehouse file (`crm-tags build`).

`crm-tags build` is write-audit-publish (crm_tags.quality.publish.build_and_publish): dbt
builds a candidate file next to the warehouse, the quality gate audits it, and only a passing
candidate is renamed over the file BI tools read. That file is never opened read-write, so BI
connections are never locked out and never make the build fail (docs/design.md, "What BI
reads").

On PostgreSQL (CRM_TARGET=postgres) `crm-tags build` builds candidate schemas
(`marts__candidate`, ...), gates them there and swaps them in for the published schemas, with
the schema `bi` BI reads, in one transaction (crm_tags.pg_publish).

`crm-tags build --scratch [PATH]` is the engineers' build: dbt writes PATH in place (default
data/dev.duckdb, the file a plain `dbt build` with profiles.yml writes), ungated, published
nowhere. It refuses the warehouse BI reads.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import io
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

from crm_tags import PROJECT_DIR
from crm_tags.warehouse_lock import explain_lock_error

DEFAULT_RAW_DIR = PROJECT_DIR / "data" / "raw"
DEFAULT_WAREHOUSE = PROJECT_DIR / "data" / "warehouse.duckdb"  # published: what BI reads
DEFAULT_SCRATCH = PROJECT_DIR / "data" / "dev.duckdb"  # profiles.yml's default path
# appended to every schema a dbt run builds (macros/generate_schema_name.sql): a PostgreSQL
# write-audit-publish build's candidate schemas (crm_tags.pg_publish)
SCHEMA_SUFFIX_ENV = "CRM_SCHEMA_SUFFIX"


class DbtError(RuntimeError):
    """dbt exited non-zero; the message carries the lines of dbt's output that say why."""


def dbt_env(raw_dir: Path, warehouse: Path, target_path: Path | None = None,
            as_of: dt.date | str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    if as_of is not None:
        # the run date as an environment variable, not --vars: a new date then keeps dbt's
        # partial parsing (macros/run_date.sql)
        env["CRM_AS_OF_DATE"] = str(as_of)
    env["CRM_RAW_DIR"] = str(Path(raw_dir).resolve())
    env["CRM_WAREHOUSE_PATH"] = str(Path(warehouse).resolve())
    env["DBT_PROFILES_DIR"] = str(PROJECT_DIR)
    env["CRM_PROJECT_DIR"] = str(PROJECT_DIR)  # segments/ (dbt may run elsewhere: run_dbt)
    segments = env.get("CRM_SEGMENTS_FILE")
    if segments:  # a relative one is the project's, as when dbt ran from the project dir
        env["CRM_SEGMENTS_FILE"] = str(PROJECT_DIR / segments)
    if target_path is not None:
        env["DBT_TARGET_PATH"] = str(target_path)
        env["DBT_LOG_PATH"] = str(PROJECT_DIR / target_path / "logs")  # dbt: relative to cwd
    return env


def run_dbt(
    args: list[str],
    raw_dir: Path = DEFAULT_RAW_DIR,
    warehouse: Path = DEFAULT_WAREHOUSE,
    as_of: dt.date | str | None = None,
    target_path: Path | None = None,
    quiet: bool = False,
) -> str:
    """Run one dbt command on the project; return its output, raise DbtError on failure.

    On DuckDB dbt runs in the warehouse's directory and opens the file by its name: the path
    is part of the profile dbt hashes to decide whether a saved parse is still valid, so with
    the absolute path every warehouse and candidate file would need a full parse of its own;
    with the name, one saved parse serves them all (parse_cache)."""
    warehouse = Path(warehouse).resolve()
    warehouse.parent.mkdir(parents=True, exist_ok=True)
    python = spark_python() if current_target() == "spark" else Path(sys.executable)
    command = [str(python.with_name("dbt")), *args]
    env = dbt_env(raw_dir, warehouse, target_path, as_of)
    cwd = PROJECT_DIR
    if current_target() == "duckdb":
        cwd, env["CRM_WAREHOUSE_PATH"] = warehouse.parent, warehouse.name
        env.setdefault("DBT_PROJECT_DIR", str(PROJECT_DIR))  # --project-dir in args wins
    cache = parse_cache(args, env, target_path)
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, check=False,
                            text=True)
    output = result.stdout + result.stderr
    if cache is not None and result.returncode == 0:
        cache.save()
    # a file another process holds: one plain sentence naming it, instead of dbt's traceback
    locked = explain_lock_error(output, cwd) if result.returncode != 0 else None
    if locked:
        raise DbtError(f"dbt {' '.join(args)} failed: {locked}")
    if not quiet:
        sys.stdout.write(output)
    if result.returncode != 0:
        reasons = dbt_failure_reasons(output)
        raise DbtError(f"dbt {' '.join(args)} failed:\n" + "\n".join(reasons[-40:] or [output[-4000:]]))
    return output


def dbt_failure_reasons(output: str) -> list[str]:
    """The lines of a failed dbt run's output that say why: error and FAIL lines with the
    indented lines under them (their message)."""
    reasons: list[str] = []
    following = False
    for line in output.splitlines():
        if "Error" in line or "error" in line or "FAIL" in line or "Delivery" in line:
            reasons.append(line)
            following = True
        elif following and line[:1].isspace() and line.strip():
            reasons.append(line)
        else:
            following = False
    return reasons


PARSE_CACHE_VARIABLE = "CRM_DBT_PARSE_CACHE"
PARTIAL_PARSE_FILE = "partial_parse.msgpack"


class ParseCache:
    """dbt saves its parse of the project in <target dir>/partial_parse.msgpack and reuses it
    when the profile, the vars and dbt_project.yml are as they were, re-reading only the files
    that changed; a new target dir starts with a full parse (docs/benchmark.md, "Test suite").
    This keeps the project's last parse per profiles.yml target and warehouse file name in one
    directory ($CRM_DBT_PARSE_CACHE, default target/parse_cache) and hands it to a dbt run
    whose target dir has none (dbt's DBT_PARTIAL_PARSE_FILE_PATH): dbt checks it exactly as
    it checks its own, so a stale or foreign one only costs the full parse it replaces."""

    def __init__(self, entry: Path, saved: Path):
        self.entry, self.saved = entry, saved
        self.started = time.time()

    def save(self) -> None:
        """Keep this run's parse (the newest code) if dbt wrote one."""
        try:
            if self.saved.stat().st_mtime < self.started - 1:
                return  # a command that does not parse (dbt debug, deps)
            self.entry.parent.mkdir(parents=True, exist_ok=True)
            partial = self.entry.with_name(f"{self.entry.name}.{os.getpid()}.{uuid.uuid4().hex}")
            shutil.copyfile(self.saved, partial)
            os.replace(partial, self.entry)  # atomic: a concurrent reader sees one whole file
        except OSError:
            pass  # a cache: never a reason for a build to fail


def parse_cache(args: list[str], env: dict[str, str], target_path: Path | None) -> ParseCache | None:
    """The ParseCache of this dbt run of the project (None for another copy of it, or when the
    caller chose a parse file or turned partial parsing off); sets DBT_PARTIAL_PARSE_FILE_PATH
    in `env` when the run's target dir has no parse of its own yet."""
    if "--project-dir" in args or env.get("DBT_PARTIAL_PARSE_FILE_PATH") \
            or "--no-partial-parse" in args \
            or env.get("DBT_PARTIAL_PARSE", "").lower() in ("0", "false") \
            or Path(env.get("DBT_PROJECT_DIR") or PROJECT_DIR).resolve() != PROJECT_DIR:
        return None
    target_dir = PROJECT_DIR / (target_path if target_path is not None else "target")
    # the schema suffix changes every node's schema: a parse of its own
    key = "\0".join([current_target(), env.get("CRM_WAREHOUSE_PATH", "")]
                     + ([env[SCHEMA_SUFFIX_ENV]] if env.get(SCHEMA_SUFFIX_ENV) else []))
    directory = Path(env.get(PARSE_CACHE_VARIABLE) or PROJECT_DIR / "target" / "parse_cache")
    cache = ParseCache(directory / f"{hashlib.sha1(key.encode()).hexdigest()[:16]}.msgpack",
                       target_dir / PARTIAL_PARSE_FILE)
    if not cache.saved.exists() and cache.entry.exists():
        env["DBT_PARTIAL_PARSE_FILE_PATH"] = str(cache.entry)
    return cache


def build(
    raw_dir: Path = DEFAULT_RAW_DIR,
    warehouse: Path = DEFAULT_WAREHOUSE,
    as_of: dt.date | str | None = None,
    select: str | None = None,
    target_path: Path | None = None,
    quiet: bool = False,
    full_refresh: bool = False,
    unit_tests: bool = True,
    project_dir: Path | None = None,
) -> str:
    """`dbt build` (seeds, models, data and unit tests) for one run date. The base models are
    incremental (they load only new delivery files); full_refresh rebuilds them from scratch.
    unit_tests=False leaves out dbt unit tests: they test the SQL, not the data, so a
    production refresh leaves them to CI (as dbt recommends). project_dir: another copy of the
    dbt project (a change under trial), built with this repository's profiles.yml."""
    if current_target() != "duckdb":
        return _build_on_server(raw_dir, warehouse, as_of, select, target_path, quiet,
                                full_refresh, unit_tests, project_dir)
    from crm_tags.segments.check import check_before_build

    check_before_build(warehouse, project_dir)  # a bad segment definition stops before dbt
    args = ["build"] + (["--select", select] if select else []) + (["--full-refresh"] if full_refresh else [])
    if not unit_tests:
        args += ["--exclude-resource-type", "unit_test"]
    if project_dir is not None:
        args += ["--project-dir", str(project_dir)]
    return run_dbt(args, raw_dir, warehouse, as_of, target_path, quiet)


def current_target() -> str:
    """The profiles.yml target every entry point builds: $CRM_TARGET, duckdb by default."""
    return os.environ.get("CRM_TARGET", "duckdb") or "duckdb"


def spark_python() -> Path:
    """The interpreter of the spark target's own environment (`make install-spark`:
    .venv-spark, or $CRM_SPARK_VENV), which runs its dbt and host-run models. pyspark stays out
    of the main environment: once installed, any `python -c` process that imports GX (an xdist
    worker, a one-liner) exits silently with status 0 (pyspark's doctest guard on import)."""
    venv = Path(os.environ.get("CRM_SPARK_VENV") or PROJECT_DIR / ".venv-spark")
    python = venv / "bin" / "python"
    if not python.exists():
        raise DbtError(f"The spark target runs in its own environment {venv}, which is not "
                       "installed: run `make install-spark` (or set CRM_SPARK_VENV).")
    return python


def _build_on_server(raw_dir, warehouse, as_of, select, target_path, quiet, full_refresh,
                     unit_tests, project_dir) -> str:
    """A build on an engine that cannot run dbt Python models (PostgreSQL, Spark;
    docs/engines.md): on PostgreSQL `crm-tags load` first (Spark reads the files itself), then
    dbt in waves around the Python models, which run on this host (crm_tags.python_on_host),
    for a selection too (its selected Python models run before their stand-ins). Built in
    place."""
    from crm_tags.python_on_host import build_in_waves, timed_step

    flags = (["--full-refresh"] if full_refresh else [])
    if not unit_tests:
        flags += ["--exclude-resource-type", "unit_test"]
    target_dir = Path(target_path) if target_path else Path(project_dir or PROJECT_DIR) / "target"
    if current_target() == "spark":  # Spark reads the landing zone itself (spark__register_landing_zone)
        from crm_tags.spark_host import build_in_subprocess

        request = {"select": select, "flags": flags, "target_dir": str(target_dir),
                   "project_dir": str(project_dir) if project_dir is not None else None}
        return build_in_subprocess(request, dbt_env(raw_dir, warehouse, target_path, as_of), quiet)
    from crm_tags.load import load

    with timed_step("crm-tags load"):
        load(raw_dir, out=sys.stdout if not quiet else io.StringIO())
    if project_dir is not None:
        flags += ["--project-dir", str(project_dir)]

    def dbt(args: list[str]) -> str:
        return run_dbt(args, raw_dir, warehouse, as_of, target_path, quiet)

    import psycopg2

    from crm_tags.load import pg_connect_kwargs

    # a selection too: its selected stand-ins' Python models run on the host before them
    return build_in_waves(dbt, lambda: psycopg2.connect(**pg_connect_kwargs()),
                          lambda: target_dir / "manifest.json", flags, select=select)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--raw-dir", type=Path, default=Path(os.environ.get("CRM_RAW_DIR", DEFAULT_RAW_DIR)))
    parser.add_argument(
        "--warehouse", type=Path, default=Path(os.environ.get("CRM_WAREHOUSE_PATH", DEFAULT_WAREHOUSE)),
        help="the published warehouse BI tools read: a candidate is built next to it, gated, and "
             "renamed over it when the gate passes (default: $CRM_WAREHOUSE_PATH or "
             "data/warehouse.duckdb)")
    parser.add_argument("--as-of", default=None, help="run date YYYY-MM-DD (default: today)")
    parser.add_argument("--select", default=None, help="dbt selection (default: everything)")
    parser.add_argument("--full-refresh", action="store_true",
                        help="rebuild the incremental models from every delivery file; the histories kept "
                             "over time (tags, segments, LTV fits) are kept")
    parser.add_argument("--runtime-dir", type=Path, default=None,
                        help="quality gate results and Data Docs (default: expectations/uncommitted)")
    parser.add_argument("--target", default=None, choices=["duckdb", "postgres", "spark"],
                        help="profiles.yml target (default: $CRM_TARGET or duckdb; docs/engines.md)")
    parser.add_argument(
        "--scratch", type=Path, nargs="?", const=DEFAULT_SCRATCH, default=None, metavar="PATH",
        help="engineers' build: dbt build in place into PATH (default data/dev.duckdb, what a "
             "plain `dbt build` writes), with dbt unit tests, no quality gate, nothing "
             "published; refuses the --warehouse BI reads")


def run(args: argparse.Namespace) -> int:
    if args.target:
        os.environ["CRM_TARGET"] = args.target  # dbt's profiles.yml and every later step read it
    if args.scratch is not None:
        return _build_scratch(args)
    from crm_tags.quality.publish import build_and_publish  # on postgres: the bi schema

    published = ("the published schemas (marts, bi, ...; the candidate is kept as "
                 "<schema>__rejected)" if current_target() == "postgres" else str(args.warehouse))

    try:
        result = build_and_publish(args.raw_dir, args.warehouse, args.as_of, select=args.select,
                                   full_refresh=args.full_refresh, runtime_dir=args.runtime_dir,
                                   quiet=False)
    except DbtError as error:
        print(f"{error}\n" + ("Not gated (Spark builds in place; nothing is published)."
                               if current_target() == "spark" else
                               f"NOT published: {published} still holds the last good marts."),
              file=sys.stderr)
        return 1
    print(result.report(), file=sys.stdout if result.published else sys.stderr)
    return 0 if result.published else 1


def _build_scratch(args: argparse.Namespace) -> int:
    scratch, published = args.scratch.resolve(), args.warehouse.resolve()
    if scratch == published and current_target() == "duckdb":
        print(f"{args.scratch} is the warehouse BI tools read: --scratch never builds it in place "
              "(a build would lock BI out). `crm-tags build` without --scratch builds a candidate "
              "and publishes it; give --scratch another file.", file=sys.stderr)
        return 2
    try:
        build(args.raw_dir, scratch, args.as_of, args.select, full_refresh=args.full_refresh)
    except DbtError as error:
        print(error, file=sys.stderr)
        return 1
    where = args.scratch if current_target() == "duckdb" else f"the {current_target()} target"
    print(f"Built {where} in place (scratch: no quality gate, not published).")
    return 0
