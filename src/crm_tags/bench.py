"""`crm-tags bench`: how close the dbt build runs to what DuckDB itself can do.

One run measures, on a generated landing zone of N customers (cached and reused):
  - the full `dbt build` into a fresh warehouse, with dbt's per-node timings (the profile);
  - the reference: the same tags from one hand-written DuckDB query straight over the landing
    zone (bench_reference.sql), in a fresh DuckDB with the same memory_limit as profiles.yml
    (unless --reference-memory-limit says otherwise);
  - the daily incremental refresh: one new day's delivery, then `dbt build` as of the next day
    on the same warehouse (incremental models load only the new files), without dbt unit tests
    (they test SQL, not data: CI runs them, a production refresh does not); measured twice:
    the daily job (what the daily schedule builds: daily tags only, on a copy of the warehouse)
    and a refresh of every tag (on the warehouse itself, then compared with the reference);
  - the quality gate (crm_tags.quality.gate.run_gate), when that module exists;
  - the peak RSS of each step's processes.
With --target spark or postgres (or $CRM_TARGET) it measures instead that engine's full
build and daily job (the next day's incremental build of everything, as `crm-tags build` runs
it there: load, dbt waves, host-run Python models; engine_benchmark below), with the CPU of
the Spark JVMs and of the PostgreSQL server. It prints a table and writes JSON. It is a
benchmark: nothing here asserts on time. As a side
check it compares the reference's tags with marts.customer_tags (after the full build and after
the refresh); tests/test_bench.py turns that check into a test on small data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import duckdb
import psutil

from crm_tags import PROJECT_DIR
from crm_tags.build import build
from crm_tags.catalog import Cadences, DbtGraph, read_catalog
from crm_tags.contract import landing_tables
from crm_tags.python_on_host import own_cpu, record_steps

REFERENCE_SQL = Path(__file__).with_name("bench_reference.sql")
SEEDS_DIR = PROJECT_DIR / "seeds"
DEFAULT_AS_OF = "2025-06-30"  # fixed, so a cached landing zone stays valid across days
DEFAULT_DATA_DIR = Path(os.environ.get("CRM_BENCH_DIR", "/tmp/crm-tags-bench"))
DEFAULT_OUT_DIR = PROJECT_DIR / "bench-results"
STAMP = "_bench_landing.json"
GB = 1024**3

# The targets (2-core, 24 GB machine).
TARGET_BUILD_OVER_REFERENCE = {1_000_000: 2.0, 100_000: 3.0}  # at >= N customers
TARGET_INCREMENTAL_SHARE = 0.20  # refresh time / full build time
TARGET_PEAK_RSS = 8 * GB


# ---------------------------------------------------------------------------------- reference

def memory_limit() -> str:
    """The memory_limit profiles.yml gives DuckDB, so the reference runs under the same cap."""
    return os.environ.get("CRM_DUCKDB_MEMORY_LIMIT", "6GB")


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _raw_relation(raw_dir: Path, table: str) -> str:
    """One landing-zone table as a subquery: the contract columns cast like the dbt view, the
    row number in its file, and the file's rank in dbt's tie-break order (mtime, then name)."""
    columns = landing_tables()[table]
    folder = Path(raw_dir) / table
    if not any(folder.glob("*.parquet")):  # a missing or empty folder is an empty table
        typed = ", ".join(f'cast(null as {kind}) as "{name}"' for name, kind in columns)
        return (f"(select {typed}, cast(null as bigint) as _file_rank, "
                "cast(null as bigint) as _source_row_number where false)")
    files = _sql_string(str(folder.resolve() / "*.parquet"))
    typed = ", ".join(f'cast(raw."{name}" as {kind}) as "{name}"' for name, kind in columns)
    return (f"(select {typed}, files._file_rank, raw.file_row_number as _source_row_number "
            f"from read_parquet({files}, union_by_name = true, filename = true, "
            "file_row_number = true) as raw "
            "inner join (select filename, row_number() over (order by "
            "cast(last_modified as timestamp) desc nulls last, filename desc) as _file_rank "
            f"from read_blob({files})) as files on files.filename = raw.filename)")


def reference_tag_codes() -> list[str]:
    """The account-level catalog tags the reference computes: those it names as a literal. The
    others (ltv and churn_risk, a fitted model; a tag added since) are left out of the comparison."""
    sql = REFERENCE_SQL.read_text()
    return sorted(
        code for code, tag in read_catalog().items()
        if tag.level == "account" and f"'{code}'" in sql
    )


def _catalog_values(tag_code: str) -> str:
    values = read_catalog()[tag_code].values
    rows = ", ".join(f"({_sql_string(code)})" for code, _, _ in values) or "(null)"
    return f"(select * from (values {rows}) as listed (tag_value))"


def render_reference_sql(raw_dir: Path, as_of: str | dt.date, seeds_dir: Path = SEEDS_DIR) -> str:
    """bench_reference.sql with its placeholders filled in for one landing zone and run date."""
    as_of = dt.date.fromisoformat(str(as_of))

    def fill(match: re.Match[str]) -> str:
        kind, name = match.group(1), match.group(2)
        if kind == "raw":
            return _raw_relation(raw_dir, name)
        if kind == "catalog_values":
            return _catalog_values(name)
        path = _sql_string(str((seeds_dir / f"{name}.csv").resolve()))
        return f"read_csv({path}, header = true, all_varchar = true)"

    sql = re.sub(r"\{\{(raw|seed|catalog_values):([a-z_/]+)\}\}", fill, REFERENCE_SQL.read_text())
    return sql.replace("{{as_of}}", f"date '{as_of.isoformat()}'")


def configure(con: duckdb.DuckDBPyConnection, limit: str | None = None) -> None:
    """The DuckDB settings of profiles.yml (memory_limit overridable)."""
    con.execute(f"set memory_limit = {_sql_string(limit or memory_limit())}")
    con.execute("set enable_progress_bar = false")
    con.execute("set preserve_insertion_order = false")


def reference_tags(raw_dir: Path, as_of: str | dt.date) -> set[tuple[str, str, str]]:
    """The reference's (customer_id, tag_code, tag_value) set, in memory (for tests)."""
    with duckdb.connect() as con:
        configure(con)
        return set(con.sql(render_reference_sql(raw_dir, as_of)).fetchall())


def build_tags(warehouse: Path) -> set[tuple[str, str, str]]:
    """marts.customer_tags as a (customer_id, tag_code, tag_value) set, of the tags the reference
    computes."""
    compared = ", ".join(_sql_string(code) for code in reference_tag_codes())
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return set(con.sql(
            "select customer_id, tag_code, tag_value from marts.customer_tags "
            f"where tag_code in ({compared})"
        ).fetchall())


def _reference_worker(raw_dir: str, as_of: str, database: str, limit: str) -> None:
    """Child process of the benchmark: run the reference into a fresh database file, print JSON.

    A separate process, so its peak RSS is its own and the DuckDB it uses starts cold like dbt's.
    """
    Path(database).unlink(missing_ok=True)
    sql = render_reference_sql(Path(raw_dir), as_of)
    with duckdb.connect(database) as con:
        configure(con, limit)
        start = time.perf_counter()
        con.execute(f"create table reference_tags as {sql}")
        seconds = time.perf_counter() - start
        rows = con.sql("select count(*) from reference_tags").fetchone()[0]
    print(json.dumps({"query_seconds": seconds, "rows": rows}))


def compare(warehouse: Path, reference_db: Path, examples: int = 5) -> dict[str, Any]:
    """Set difference between marts.customer_tags and the reference's tags."""
    compared = ", ".join(_sql_string(code) for code in reference_tag_codes())
    with duckdb.connect() as con:
        configure(con)
        con.execute(f"attach {_sql_string(str(warehouse))} as wh (read_only)")
        con.execute(f"attach {_sql_string(str(reference_db))} as ref (read_only)")
        con.execute(f"""
            create temp table built as
            select customer_id, tag_code, tag_value from wh.marts.customer_tags
            where tag_code in ({compared})
        """)
        only_build = con.sql("select * from built except select * from ref.reference_tags")
        only_ref = con.sql("select * from ref.reference_tags except select * from built")
        result = {
            "only_in_build": only_build.aggregate("count(*)").fetchone()[0],
            "only_in_reference": only_ref.aggregate("count(*)").fetchone()[0],
            "examples_only_in_build": [list(r) for r in only_build.order("all").limit(examples).fetchall()],
            "examples_only_in_reference": [list(r) for r in only_ref.order("all").limit(examples).fetchall()],
        }
    result["matches"] = result["only_in_build"] == 0 and result["only_in_reference"] == 0
    return result


# ---------------------------------------------------------------------------------- landing zone

def landing_key(customers: int, seed: int, as_of: str, dirty: float) -> str:
    return f"n{customers}_seed{seed}_{as_of}" + (f"_dirty{dirty:g}" if dirty else "")


def ensure_landing_zone(data_dir: Path, customers: int, seed: int, as_of: str,
                        dirty: float = 0.0) -> tuple[Path, dict[str, Any]]:
    """The cached landing zone for these arguments, generated first if it is not complete."""
    raw_dir = data_dir / "landing" / landing_key(customers, seed, as_of, dirty)
    stamp = raw_dir / STAMP
    if stamp.exists():  # written last: its presence means a complete landing zone
        info = json.loads(stamp.read_text())
        info["reused"] = True
        return raw_dir, info
    from crm_tags.generate import generate_landing_zone

    start = time.perf_counter()
    stats = generate_landing_zone(raw_dir, customers, seed=seed, as_of=dt.date.fromisoformat(as_of),
                                  dirty=dirty)
    # Row counts: under "rows", or at the top level by table name (the generator's format moved).
    rows = stats.get("rows") or {k: v for k, v in stats.items() if k in landing_tables()}
    info = {"generate_seconds": round(time.perf_counter() - start, 2), "rows": rows,
            "files": stats.get("files"), "bytes": _tree_bytes(raw_dir)}
    stamp.write_text(json.dumps(info, indent=2))
    info["reused"] = False
    return raw_dir, info


def _tree_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*.parquet"))


def link_tree(source: Path, target: Path) -> None:
    """A copy of a landing zone made of hard links (same bytes and mtimes, no disk, no time), so
    the next day's delivery can be added without touching the cached zone."""
    if target.exists():
        shutil.rmtree(target)
    for path in sorted(source.rglob("*.parquet")):
        dest = target / path.relative_to(source)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest)
        except OSError:  # another file system: copy, keeping the mtime the dedupe orders by
            shutil.copy2(path, dest)
    for table in landing_tables():  # empty folders too
        (target / table).mkdir(parents=True, exist_ok=True)


def write_daily_delivery(raw_dir: Path, as_of: str | dt.date) -> dict[str, int]:
    """Add the delivery of the day after `as_of` to a landing zone; return rows per table.

    Sized like an average recent day: about 1/30 of the last 30 days' orders (with their lines),
    tickets, campaign and web events are copied to the new day under new ids, and ~1% of recent
    paid/shipped orders are re-delivered with a new status (completed, some refunded), so the
    refresh sees both new keys and newer versions of old ones. About 0.1% of accounts are
    re-delivered with a newer updated_at. Every file carries the contract columns and types.
    """
    as_of = dt.date.fromisoformat(str(as_of))
    day = as_of + dt.timedelta(days=1)
    day_sql, stem, suffix = f"date '{day.isoformat()}'", f"{day.isoformat()}_daily", day.strftime("%Y%m%d")
    ingested = f"timestamp '{day.isoformat()} 23:00:00'"
    recent = f"date_diff('day', cast({{ts}} as date), date '{as_of.isoformat()}') between 0 and 29"

    def src(table: str) -> str:
        return f"read_parquet({_sql_string(str(Path(raw_dir) / table / '*.parquet'))}, union_by_name = true)"

    def moved(column: str) -> str:  # the same time of day, on the new day
        return f"{column} + to_days(date_diff('day', cast({column} as date), {day_sql}))"

    order_sample = (f"select * from {src('orders/orders')} where {recent.format(ts='order_ts')} "
                    "and order_id is not null and hash(order_id) % 30 = 0")
    statements = {
        "orders/orders": f"""
            select * replace (order_id || '-{suffix}' as order_id, {moved('order_ts')} as order_ts,
                {ingested} as _ingested_at)
            from ({order_sample})
            union all by name
            select * replace ((case when hash(order_id) % 10 = 0 then 'refunded' else 'completed'
                end) as status, {ingested} as _ingested_at)
            from {src('orders/orders')}
            where {recent.format(ts='order_ts')} and lower(trim(status)) in ('paid', 'shipped')
                and hash(order_id) % 100 = 1
        """,
        "orders/order_items": f"""
            select items.* replace (items.order_id || '-{suffix}' as order_id)
            from {src('orders/order_items')} as items
            semi join ({order_sample}) as sampled on items.order_id = sampled.order_id
        """,
        "support/tickets": f"""
            select * replace (ticket_id || '-{suffix}' as ticket_id, {moved('opened_at')} as opened_at,
                cast(null as timestamp) as resolved_at)
            from {src('support/tickets')}
            where {recent.format(ts='opened_at')} and hash(ticket_id) % 30 = 0
        """,
        "campaigns/campaign_events": f"""
            select * replace (event_id || '-{suffix}' as event_id, {moved('event_ts')} as event_ts)
            from {src('campaigns/campaign_events')}
            where {recent.format(ts='event_ts')} and hash(event_id) % 30 = 0
        """,
        "campaigns/web_events": f"""
            select * replace (event_id || '-{suffix}' as event_id, {moved('event_ts')} as event_ts)
            from {src('campaigns/web_events')}
            where {recent.format(ts='event_ts')} and hash(event_id) % 30 = 0
        """,
        "crm/accounts": f"""
            select * replace ({ingested} as updated_at)
            from {src('crm/accounts')}
            where account_id is not null and hash(account_id) % 1000 = 7
            qualify row_number() over (partition by account_id order by updated_at desc nulls last) = 1
        """,
    }
    rows: dict[str, int] = {}
    with duckdb.connect() as con:
        for table, select in statements.items():
            if not any((Path(raw_dir) / table).glob("*.parquet")):
                continue
            columns = ", ".join(f'cast("{n}" as {k}) as "{n}"' for n, k in landing_tables()[table])
            target = Path(raw_dir) / table / f"{stem}.parquet"
            relation = con.sql(f"select {columns} from ({select})")
            rows[table] = relation.aggregate("count(*)").fetchone()[0]
            if rows[table]:
                relation.write_parquet(str(target), compression="zstd")
    return rows


# ---------------------------------------------------------------------------------- measuring

@dataclass
class Step:
    name: str
    seconds: float | None = None
    cpu_seconds: float | None = None
    peak_rss: int | None = None
    status: str = "ok"
    detail: dict[str, Any] = field(default_factory=dict)


class PeakRss:
    """Peak resident memory of this process's children while the block runs.

    Samples the summed RSS of the child process tree every `interval` seconds, and also reads the
    kernel's own high-water mark of waited-for children (ru_maxrss): when that rose during the
    block, it is this block's exact peak.
    """

    def __init__(self, interval: float = 0.05, include_self: bool = False):
        self.interval = interval
        self.include_self = include_self
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = me.memory_info().rss if self.include_self else 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        self._maxrss_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if maxrss > self._maxrss_before:
            self.peak = max(self.peak, maxrss * 1024)  # KiB on Linux


@contextmanager
def measure(step: Step, counters: Callable[[], dict[str, float]] | None = None,
            include_self: bool = False) -> Iterator[Step]:
    """Wall, CPU and peak RSS of the block's child processes. counters (engine runs): the
    cumulative CPU to take the difference of instead (it may reap processes first), each key
    but cpu_seconds going into step.detail; include_self: this process's RSS too (PostgreSQL's
    host-run models run in it)."""
    # CPU time of the step's processes too: on a shared machine wall time includes waiting for
    # cores that others use, CPU time does not.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    counted = counters() if counters else {}
    with PeakRss(include_self=include_self) as rss:
        start = time.perf_counter()
        try:
            yield step
        finally:
            step.seconds = round(time.perf_counter() - start, 2)
    if counters:
        after_counted = counters()
        step.cpu_seconds = round(after_counted["cpu_seconds"] - counted["cpu_seconds"], 2)
        step.detail.update({key: round(value - counted.get(key, 0.0), 2)
                            for key, value in after_counted.items() if key != "cpu_seconds"})
    else:
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        step.cpu_seconds = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2)
    step.peak_rss = rss.peak


def dbt_profile(target_path: Path, top: int = 10) -> dict[str, Any]:
    """Where the build's time goes, from dbt's run_results.json: the slowest nodes, and the
    summed node time per resource type (with 2 threads the sum exceeds the wall time)."""
    path = target_path / "run_results.json"
    if not path.exists():
        return {}
    run_results = json.loads(path.read_text())
    nodes = [
        {"node": r["unique_id"].split(".", 2)[-1] if r["unique_id"].count(".") >= 2 else r["unique_id"],
         "type": r["unique_id"].split(".")[0], "seconds": round(r.get("execution_time") or 0.0, 2),
         "status": r.get("status")}
        for r in run_results.get("results", [])
    ]
    by_type: dict[str, dict[str, float]] = {}
    for n in nodes:
        entry = by_type.setdefault(n["type"], {"count": 0, "seconds": 0.0})
        entry["count"] += 1
        entry["seconds"] = round(entry["seconds"] + n["seconds"], 2)
    # Model time per folder (staging, marts/core, marts/tags, audit, ...), from the manifest.
    by_layer: dict[str, dict[str, float]] = {}
    manifest_path = target_path / "manifest.json"
    if manifest_path.exists():
        manifest_nodes = json.loads(manifest_path.read_text()).get("nodes", {})
        for r in run_results.get("results", []):
            fqn = manifest_nodes.get(r["unique_id"], {}).get("fqn", [])
            if r["unique_id"].startswith("model.") and len(fqn) > 2:
                layer = "/".join(fqn[1:3] if fqn[1] == "marts" and len(fqn) > 3 else fqn[1:2])
                entry = by_layer.setdefault(layer, {"count": 0, "seconds": 0.0})
                entry["count"] += 1
                entry["seconds"] = round(entry["seconds"] + (r.get("execution_time") or 0.0), 2)
    return {
        "dbt_elapsed_seconds": round(run_results.get("elapsed_time") or 0.0, 2),
        "by_type": by_type,
        "models_by_layer": dict(sorted(by_layer.items(), key=lambda kv: -kv[1]["seconds"])),
        "top_nodes": sorted(nodes, key=lambda n: -n["seconds"])[:top],
        "failed_nodes": [n["node"] for n in nodes if n["status"] in ("error", "fail", "runtime error")],
        "customer_tags_built": any(n["node"] == "customer_tags" and n["status"] == "success"
                                   for n in nodes),
    }


def run_reference(raw_dir: Path, as_of: str, database: Path, limit: str | None = None) -> Step:
    step = Step("reference query")
    limit = limit or memory_limit()
    command = [sys.executable, "-m", "crm_tags.bench", "--reference-worker", str(raw_dir), as_of,
               str(database), limit]
    with measure(step):
        result = subprocess.run(command, check=False, capture_output=True, text=True)
    if result.returncode != 0:
        step.status = "failed"
        step.detail["error"] = (result.stderr or result.stdout)[-2000:]
        step.detail["memory_limit"] = limit
        if "Out of Memory" in step.detail["error"]:  # one statement holds more at once than dbt
            step.status = f"out of memory at {limit} (see --reference-memory-limit)"
        return step
    step.detail.update(json.loads(result.stdout.strip().splitlines()[-1]))
    step.detail["memory_limit"] = limit
    return step


PARTIAL_PARSE_FILE = "partial_parse.msgpack"


def run_build(name: str, raw_dir: Path, warehouse: Path, as_of: str, target_path: Path,
              project_dir: Path | None = None, unit_tests: bool = True,
              select: str | None = None, parsed_by: Path | None = None,
              counters: Callable[[], dict[str, float]] | None = None) -> Step:
    """One timed `dbt build`. parsed_by: the target directory of an earlier build of the same
    project, whose partial-parse file this build starts from, as a scheduled run does
    (dagster-dbt copies the code location's parse into each run's target); the run date is
    an environment variable, so dbt then re-parses nothing (macros/run_date.sql)."""
    step = Step(name)
    shutil.rmtree(target_path, ignore_errors=True)
    if parsed_by is not None and (parsed_by / PARTIAL_PARSE_FILE).exists():
        target_path.mkdir(parents=True)
        shutil.copyfile(parsed_by / PARTIAL_PARSE_FILE, target_path / PARTIAL_PARSE_FILE)
    with measure(step, counters, include_self=counters is not None), \
            record_steps(counters or own_cpu) as parts:
        try:
            output = build(raw_dir, warehouse, as_of, select=select, target_path=target_path,
                           quiet=True, unit_tests=unit_tests, project_dir=project_dir)
        except Exception as error:  # noqa: BLE001 - DbtError or a crash: report it, go on
            step.status = "failed"
            output = str(error)
    if parts:  # a build in waves (spark, postgres): where its time went
        step.detail["parts"] = parts
    target_path.mkdir(parents=True, exist_ok=True)
    (target_path / "bench-dbt-output.log").write_text(output)
    profile = dbt_profile(target_path)
    step.detail["profile"] = profile
    if step.status == "failed":
        step.detail["error"] = output[-2000:]
        # A node that fails (e.g. a model still in progress) does not stop the benchmark when
        # dbt built the rest: the timing still stands, the failed nodes are reported.
        failed = profile.get("failed_nodes")
        if failed and profile.get("customer_tags_built"):
            step.status = f"{len(failed)} node(s) failed"
    return step


def daily_job_selection(manifest: Path, project_dir: Path | None = None) -> list[str]:
    """The models and seeds the Dagster daily job builds (orchestration's cadence jobs): the
    daily tags and what they need, the BI marts and the audit; weekly and monthly tags are not
    rebuilt (the marts read their last tables)."""
    catalog = read_catalog((project_dir or PROJECT_DIR) / "dbt_project.yml")
    return sorted(Cadences(catalog, DbtGraph.from_path(manifest)).models("daily"))


def run_daily_job(raw_dir: Path, warehouse: Path, as_of: str, run_dir: Path, parsed_by: Path,
                  project_dir: Path | None = None) -> Step:
    """The daily schedule's refresh. It runs on the warehouse file itself (the path dbt's
    profile and partial parse were made with), after an untimed copy of it; the copy then
    takes its place, so the all-tags refresh that follows starts from the same state."""
    before = run_dir / "warehouse_before_daily_job.duckdb"
    wal, before_wal = (f.with_name(f.name + ".wal") for f in (warehouse, before))
    shutil.copyfile(warehouse, before)
    if wal.exists():
        shutil.copyfile(wal, before_wal)
    selection = daily_job_selection(parsed_by / "manifest.json", project_dir)
    try:
        step = run_build("dbt build (daily job)", raw_dir, warehouse, as_of,
                         run_dir / "target_daily_job", project_dir, unit_tests=False,
                         select=" ".join(selection), parsed_by=parsed_by)
    finally:
        wal.unlink(missing_ok=True)
        before.replace(warehouse)
        if before_wal.exists():
            before_wal.replace(wal)
    step.detail["nodes_selected"] = len(selection)
    return step


def usable(step: Step) -> bool:
    """The build produced marts.customer_tags (so later steps can run on it)."""
    return step.status == "ok" or bool(step.detail.get("profile", {}).get("customer_tags_built"))


# Runs in a child process (its own peak RSS; GX imports stay out of the benchmark process). The
# gate's runtime files and the dbt manifest it reads are the benchmark run's, not the shared ones.
GATE_SCRIPT = """
import inspect, json, sys
from pathlib import Path
from crm_tags.quality.gate import run_gate
warehouse, manifest, runtime_dir = sys.argv[1:4]
params = inspect.signature(run_gate).parameters
kwargs = {}
if "manifest" in params and Path(manifest).exists():
    kwargs["manifest"] = Path(manifest)
if "runtime_dir" in params:
    kwargs["runtime_dir"] = Path(runtime_dir)
result = run_gate(Path(warehouse), **kwargs)
passed = result if isinstance(result, bool) else getattr(result, "passed", None)
failures = [f"{getattr(f, 'description', f)} {getattr(f, 'details', '')}".strip()
            for f in getattr(result, "failures", [])]
print(json.dumps({"passed": passed, "failures": failures[:10]}))
"""


def run_quality_gate(warehouse: Path, manifest: Path, runtime_dir: Path) -> Step:
    step = Step("quality gate")
    try:
        from importlib.util import find_spec

        available = find_spec("crm_tags.quality.gate") is not None
    except ImportError:
        available = False
    if not available:
        step.status = "not available"
        return step
    with measure(step):
        result = subprocess.run([sys.executable, "-c", GATE_SCRIPT, str(warehouse), str(manifest),
                                 str(runtime_dir)],
                                check=False, capture_output=True, text=True, cwd=PROJECT_DIR)
    if result.returncode != 0:
        step.status = "failed"
        step.detail["error"] = (result.stderr or result.stdout)[-2000:]
    else:
        step.detail.update(json.loads(result.stdout.strip().splitlines()[-1]))
        if step.detail.get("passed") is False:
            step.status = "gate failed"
    return step


# ---------------------------------------------------------------------------------- the run

def benchmark(customers: int, data_dir: Path, as_of: str = DEFAULT_AS_OF, seed: int = 42,
              dirty: float = 0.0, skip_reference: bool = False, skip_incremental: bool = False,
              skip_gate: bool = False, check: bool = True, project_dir: Path | None = None,
              reference_memory_limit: str | None = None,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run every step once; return the results (the JSON document)."""
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    data_dir = data_dir.resolve()
    raw_dir, landing = ensure_landing_zone(data_dir, customers, seed, as_of, dirty)
    how = "reused" if landing["reused"] else f"generated in {landing['generate_seconds']}s"
    log(f"landing zone: {raw_dir} ({how})")
    run_name = landing_key(customers, seed, as_of, dirty)
    if project_dir is not None:
        project_dir = project_dir.resolve()
        run_name += f"_{project_dir.name}"
    run_dir = data_dir / "runs" / run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    warehouse = run_dir / "warehouse.duckdb"
    for stale in (warehouse, run_dir / "warehouse.duckdb.wal"):
        stale.unlink(missing_ok=True)
    steps: list[Step] = []
    checks: dict[str, Any] = {}

    log("full dbt build ...")
    full = run_build("dbt build (full)", raw_dir, warehouse, as_of, run_dir / "target_full",
                     project_dir)
    steps.append(full)

    reference = None
    if not skip_reference:
        log("reference query ...")
        reference = run_reference(raw_dir, as_of, run_dir / "reference.duckdb",
                                  reference_memory_limit)
        steps.append(reference)
        if check and usable(full) and reference.status == "ok":
            checks["full_build"] = compare(warehouse, run_dir / "reference.duckdb")

    incremental = daily_job = None
    if not skip_incremental and usable(full):
        next_day = (dt.date.fromisoformat(as_of) + dt.timedelta(days=1)).isoformat()
        day2_raw = run_dir / "raw_next_day"
        link_tree(raw_dir, day2_raw)
        delivery = write_daily_delivery(day2_raw, as_of)
        log(f"daily delivery for {next_day}: {sum(delivery.values()):,} rows; the daily job ...")
        daily_job = run_daily_job(day2_raw, warehouse, next_day, run_dir,
                                  run_dir / "target_full", project_dir)
        steps.append(daily_job)
        log("incremental dbt build of everything ...")
        # A production refresh: data tests run, dbt unit tests (SQL logic, CI's job) do not.
        incremental = run_build("dbt build (daily refresh)", day2_raw, warehouse, next_day,
                                run_dir / "target_incremental", project_dir, unit_tests=False,
                                parsed_by=run_dir / "target_full")
        incremental.detail["delivery_rows"] = delivery
        steps.append(incremental)
        if check and not skip_reference and usable(incremental):
            day2_ref = run_reference(day2_raw, next_day, run_dir / "reference_next_day.duckdb",
                                     reference_memory_limit)
            if day2_ref.status == "ok":
                checks["daily_refresh"] = compare(warehouse, run_dir / "reference_next_day.duckdb")

    if not skip_gate:
        log("quality gate ...")
        last_build = "target_incremental" if incremental else "target_full"
        steps.append(run_quality_gate(warehouse, run_dir / last_build / "manifest.json",
                                      run_dir / "gate"))

    ratios: dict[str, float | None] = {}
    if reference and reference.status == "ok" and usable(full):
        ratios["build_over_reference"] = round(full.seconds / reference.seconds, 2)
        # the same in CPU time, which other load on the machine does not inflate
        ratios["build_over_reference_cpu"] = round(full.cpu_seconds / reference.cpu_seconds, 2)
    if incremental and usable(incremental) and usable(full):
        ratios["refresh_over_build"] = round(incremental.seconds / full.seconds, 3)
    if daily_job and daily_job.status == "ok" and usable(full):
        ratios["daily_job_over_build"] = round(daily_job.seconds / full.seconds, 3)
    # The memory target is the warehouse's (builds and gate); the reference is only a yardstick.
    peak = max((s.peak_rss or 0 for s in steps if s is not reference), default=0)

    return {
        "customers": customers, "seed": seed, "as_of": as_of, "dirty": dirty,
        "project_dir": str(project_dir or PROJECT_DIR),
        "landing_zone": {"path": str(raw_dir), **landing},
        "machine": {**_machine(), "load_average_at_start": load_at_start},
        "steps": [
            {"step": s.name, "status": s.status, "seconds": s.seconds, "cpu_seconds": s.cpu_seconds,
             "ratio_to_reference": (round(s.seconds / reference.seconds, 2)
                                    if reference and reference.status == "ok" and s.seconds else None),
             "peak_rss_bytes": s.peak_rss, **s.detail}
            for s in steps
        ],
        "ratios": ratios,
        "peak_rss_bytes": peak,  # of the build, refresh and gate steps
        "targets": _targets(customers, ratios, peak),
        "reference_check": checks,
    }


# ---------------------------------------------------------------------------------- other engines

ENGINES = ("spark", "postgres")
_PR_SET_CHILD_SUBREAPER = 36  # prctl(2)
# dbt's node lines: "12 of 170 OK created sql table model staging.stg_orders .... [OK in 3.21s]"
_DBT_NODE_LINE = re.compile(r"\d+ of \d+ (?:OK|PASS|WARN|ERROR|FAIL)\S* (.+?) +\.* *\[.*? in ([\d.]+)s\]")


def _set_subreaper(on: bool) -> None:
    """Adopt orphaned descendants: dbt's local Spark session is a JVM that outlives dbt (its
    CPU, 10 s and more per dbt run, would otherwise never be counted). Linux only."""
    import ctypes

    ctypes.CDLL(None).prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)


def _reap_orphans(keep: set[int], timeout: float = 120.0) -> None:
    """Wait for the adopted descendants (not `keep`) to exit and reap them, so their CPU joins
    RUSAGE_CHILDREN. Gives up after `timeout` (a JVM that never exits is left running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = [c.pid for c in psutil.Process().children() if c.pid not in keep]
        if not waiting:
            return
        for pid in waiting:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # not ours to wait for (another thread's Popen)
                keep.add(pid)
        time.sleep(0.2)


def _server_cpu(postmaster: int | None) -> float:
    """CPU seconds of a PostgreSQL server so far: the postmaster, its exited backends (which it
    waited for) and its live processes."""
    if postmaster is None:
        return 0.0
    try:
        root = psutil.Process(postmaster)
        times = root.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in root.children(recursive=True):
            try:
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
            except psutil.Error:
                pass
        return total
    except psutil.Error:
        return 0.0


def _postmaster_pid(settings: dict[str, str]) -> int | None:
    """The throwaway cluster's postmaster (crm_tags.pg_server: data/ next to the socket folder)."""
    pid_file = Path(settings["CRM_PG_HOST"]).parent / "data" / "postmaster.pid"
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _node_times(target_path: Path, top: int = 10) -> list[dict[str, Any]]:
    """The slowest dbt nodes of a build made of several dbt runs, from dbt's log (each run
    appends to it, and overwrites run_results.json; kept when a run fails)."""
    log = target_path / "logs" / "dbt.log"
    if not log.exists():
        log = target_path / "bench-dbt-output.log"
    if not log.exists():
        return []
    found = [{"node": m.group(1).strip(), "seconds": float(m.group(2))}
             for m in _DBT_NODE_LINE.finditer(log.read_text())]
    return sorted(found, key=lambda n: -n["seconds"])[:top]


@contextmanager
def _engine(target: str, run_dir: Path) -> Iterator[dict[str, Any]]:
    """The engine of one run, as the environment its builds read: a throwaway PostgreSQL
    cluster (crm_tags.pg_server), or a fresh Spark warehouse folder and metastore."""
    from crm_tags.build import spark_python

    saved = dict(os.environ)
    info: dict[str, Any] = {"target": target}
    try:
        os.environ["CRM_TARGET"] = target
        if target == "spark":
            spark_dir = run_dir / "spark"
            shutil.rmtree(spark_dir, ignore_errors=True)
            os.environ["CRM_SPARK_DIR"] = str(spark_dir)
            info.update(spark_python=str(spark_python()),
                        driver_memory=os.environ.get("CRM_SPARK_DRIVER_MEMORY", "3g (default)"),
                        master=os.environ.get("CRM_SPARK_MASTER", "local[2] (default)"))
            yield info
            shutil.rmtree(spark_dir, ignore_errors=True)
        else:
            from crm_tags.pg_server import throwaway_cluster

            with throwaway_cluster() as settings:
                os.environ.update(settings)
                info["postmaster"] = _postmaster_pid(settings)
                yield info
    finally:
        os.environ.clear()
        os.environ.update(saved)


def engine_benchmark(target: str, customers: int, data_dir: Path, as_of: str = DEFAULT_AS_OF,
                     seed: int = 42, dirty: float = 0.0, skip_incremental: bool = False,
                     project_dir: Path | None = None,
                     log: Callable[[str], None] = print) -> dict[str, Any]:
    """The full build and the daily job on Spark or PostgreSQL; return the results (JSON).

    As `crm-tags build` runs there, without dbt unit tests (CI's job): the load (PostgreSQL),
    dbt in waves, the host-run Python models (crm_tags.python_on_host). The daily job is the
    next day's build of everything, incremental (the engines have no cadence selection of
    their own): the bench's daily delivery added to a hard-linked copy of the cached zone, on
    the warehouse the full build left. CPU: this process and every descendant (the Spark JVMs
    are adopted and reaped), and on PostgreSQL the server's own (server_cpu_seconds). The
    reference, its check and the gate are DuckDB's: not run here."""
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    data_dir = data_dir.resolve()
    cached, landing = ensure_landing_zone(data_dir, customers, seed, as_of, dirty)
    log(f"landing zone: {cached} ({'reused' if landing['reused'] else 'generated'}); target {target}")
    run_name = landing_key(customers, seed, as_of, dirty) + f"_{target}"
    if project_dir is not None:
        project_dir = project_dir.resolve()
        run_name += f"_{project_dir.name}"
    run_dir = data_dir / "runs" / run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    raw_dir = run_dir / "raw"  # the builds' zone: the daily delivery is written here, not cached
    link_tree(cached, raw_dir)
    warehouse = run_dir / "unused.duckdb"  # the engines build in place, not into this file
    steps: list[Step] = []
    loads: dict[str, list[float]] = {}

    with _engine(target, run_dir) as engine:
        keep = {child.pid for child in psutil.Process().children()}  # not adopted: not reaped
        keep |= {engine["postmaster"]} if engine.get("postmaster") else set()
        _set_subreaper(True)  # after the cluster started: its postmaster stays init's

        def counters() -> dict[str, float]:
            _reap_orphans(keep)
            values = own_cpu()
            if target == "postgres":
                values["server_cpu_seconds"] = _server_cpu(engine.get("postmaster"))
            return values

        def uptime(label: str) -> None:
            loads[label] = [round(x, 2) for x in os.getloadavg()]

        try:
            log("full build ...")
            uptime("before full build")
            full = run_build("build (full)", raw_dir, warehouse, as_of, run_dir / "target_full",
                             project_dir, unit_tests=False, counters=counters)
            uptime("after full build")
            steps.append(full)
            if not skip_incremental and usable(full):
                next_day = (dt.date.fromisoformat(as_of) + dt.timedelta(days=1)).isoformat()
                delivery = write_daily_delivery(raw_dir, as_of)
                log(f"daily delivery for {next_day}: {sum(delivery.values()):,} rows; the daily job ...")
                daily = run_build("build (daily job)", raw_dir, warehouse, next_day,
                                  run_dir / "target_daily_job", project_dir, unit_tests=False,
                                  parsed_by=run_dir / "target_full", counters=counters)
                uptime("after daily job")
                daily.detail["delivery_rows"] = delivery
                steps.append(daily)
        finally:
            _set_subreaper(False)
        for step in steps:
            step.detail["slowest_nodes"] = _node_times(run_dir / ("target_full" if "full" in step.name
                                                                  else "target_daily_job"))
    engine.pop("postmaster", None)
    peak = max((s.peak_rss or 0 for s in steps), default=0)
    return {
        "customers": customers, "seed": seed, "as_of": as_of, "dirty": dirty, "target": target,
        "engine": engine, "project_dir": str(project_dir or PROJECT_DIR),
        "landing_zone": {"path": str(cached), "copy": str(raw_dir), **landing},
        # DuckDB's memory_limit and 8 GB peak budget say nothing of a Spark JVM or a PostgreSQL
        # server: the peak is reported, not judged
        "machine": {**_machine(duckdb_settings=False), "load_average_at_start": load_at_start,
                    "load_averages": loads},
        "steps": [{"step": s.name, "status": s.status, "seconds": s.seconds,
                   "cpu_seconds": s.cpu_seconds, "ratio_to_reference": None,
                   "peak_rss_bytes": s.peak_rss, **s.detail} for s in steps],
        "ratios": {}, "peak_rss_bytes": peak,
        "targets": {},
        "reference_check": {},
    }


def _machine(duckdb_settings: bool = True) -> dict[str, Any]:
    import dbt.version

    return {
        "cpus": os.cpu_count(), "memory_bytes": psutil.virtual_memory().total,
        "platform": platform.platform(), "python": platform.python_version(),
        "duckdb": duckdb.__version__, "dbt_core": dbt.version.__version__,
        **({"memory_limit": memory_limit()} if duckdb_settings else {}),
        "when": dt.datetime.now().isoformat(timespec="seconds"),
        # Other work on the machine skews wall times: the load during the run says how much.
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


def _targets(customers: int, ratios: dict[str, float | None], peak: int) -> dict[str, Any]:
    """The issue's targets that apply at this scale, each with its measured value."""
    targets: dict[str, Any] = {}
    limit = next((v for n, v in sorted(TARGET_BUILD_OVER_REFERENCE.items(), reverse=True)
                  if customers >= n), None)
    if limit is not None and "build_over_reference" in ratios:
        targets["build_over_reference"] = {"max": limit, "value": ratios["build_over_reference"],
                                           "met": ratios["build_over_reference"] <= limit}
    # the refresh of every tag, and the daily schedule's job (daily tags only)
    for name in ("refresh_over_build", "daily_job_over_build"):
        if name in ratios:
            targets[name] = {"max": TARGET_INCREMENTAL_SHARE, "value": ratios[name],
                             "met": ratios[name] <= TARGET_INCREMENTAL_SHARE}
    targets["peak_rss_bytes"] = {"max": TARGET_PEAK_RSS, "value": peak, "met": peak < TARGET_PEAK_RSS}
    return targets


def format_table(results: dict[str, Any]) -> str:
    def gb(n: int | None) -> str:
        return f"{n / GB:.2f} GB" if n else "-"

    machine = results["machine"]
    on = f" on {results['target']}" if results.get("target") else ""
    lines = [(f"crm-tags bench{on}: {results['customers']:,} customers, as of {results['as_of']}, "
              f"{machine['cpus']} cpus, "
              + (f"memory_limit {machine['memory_limit']}, " if "memory_limit" in machine else "")
              + f"load average {machine['load_average_at_start'][0]} -> {machine['load_average_at_end'][0]}"),
             "", f"  {'step':<28} {'seconds':>9} {'x reference':>12} {'CPU s':>9} {'peak RSS':>10}  status"]
    for s in results["steps"]:
        seconds = f"{s['seconds']:.1f}" if s["seconds"] is not None else "-"
        cpu = f"{s['cpu_seconds']:.1f}" if s["cpu_seconds"] is not None else "-"
        ratio = f"{s['ratio_to_reference']:.2f}" if s["ratio_to_reference"] else "-"
        lines.append(f"  {s['step']:<28} {seconds:>9} {ratio:>12} {cpu:>9} "
                     f"{gb(s['peak_rss_bytes']):>10}  {s['status']}")
    lines.append("")
    ratios = results.get("ratios", {})
    if "build_over_reference_cpu" in ratios:
        lines.append(f"  build / reference: {ratios['build_over_reference']} wall, "
                     f"{ratios['build_over_reference_cpu']} CPU")
    for name, t in results["targets"].items():
        value = gb(t["value"]) if name == "peak_rss_bytes" else t["value"]
        limit = gb(t["max"]) if name == "peak_rss_bytes" else t["max"]
        lines.append(f"  target {name:<22} {value} (max {limit}): {'met' if t['met'] else 'NOT MET'}")
    for when, c in results["reference_check"].items():
        state = "match" if c["matches"] else (
            f"DIFFER: {c['only_in_build']} only in build, {c['only_in_reference']} only in reference")
        lines.append(f"  reference vs marts.customer_tags after {when}: {state}")
    for s in results["steps"]:
        if s.get("parts"):
            server = (f", PostgreSQL server CPU {s['server_cpu_seconds']:.1f}s"
                      if s.get("server_cpu_seconds") is not None else "")
            lines += ["", f"  {s['step']}: where the time went{server}"]
            lines += [f"    {p['seconds']:>8.1f}s wall {p['cpu_seconds']:>7.1f}s CPU"
                      + (f" {p['server_cpu_seconds']:>7.1f}s server" if "server_cpu_seconds" in p else "")
                      + f"  {p['step']}" for p in s["parts"]]
            lines += [f"    {n['seconds']:>8.2f}s  {n['node']}" for n in s.get("slowest_nodes", [])]
            continue
        profile = s.get("profile")
        if profile and profile.get("top_nodes"):
            lines += ["", f"  {s['step']}: dbt {profile['dbt_elapsed_seconds']}s; node time by type: "
                      + ", ".join(f"{k} {v['seconds']}s ({v['count']})" for k, v in profile["by_type"].items())]
            if profile.get("models_by_layer"):
                lines.append("  model time by folder: " + ", ".join(
                    f"{k} {v['seconds']}s ({v['count']})" for k, v in profile["models_by_layer"].items()))
            lines += [f"    {n['seconds']:>8.2f}s  {n['type']:<9} {n['node']}" for n in profile["top_nodes"]]
            if profile.get("failed_nodes"):
                lines.append("    failed: " + ", ".join(profile["failed_nodes"]))
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--customers", type=int, required=True, help="number of customers")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help=f"cache of landing zones and run files (default {DEFAULT_DATA_DIR})")
    parser.add_argument("--as-of", default=DEFAULT_AS_OF, help=f"run date (default {DEFAULT_AS_OF})")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--dirty", type=float, default=0.0, help="dirt rate of the generated data")
    parser.add_argument("--out", type=Path, default=None,
                        help="results JSON (default bench-results/bench-<N>.json)")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--skip-incremental", action="store_true")
    parser.add_argument("--skip-gate", action="store_true")
    parser.add_argument("--project-dir", type=Path, default=None,
                        help="benchmark a copy of the dbt project (a change under trial) "
                             "instead of this one")
    parser.add_argument("--reference-memory-limit", default=None,
                        help="DuckDB memory_limit of the reference (default: the build's)")
    parser.add_argument("--no-check", action="store_true",
                        help="do not compare the reference's tags with marts.customer_tags")
    parser.add_argument("--target", default=None, choices=["duckdb", *ENGINES],
                        help="engine (default: $CRM_TARGET or duckdb). spark, postgres: that "
                             "engine's full build and daily job only (a throwaway PostgreSQL "
                             "cluster, a fresh local Spark warehouse), with their CPU")


def run(args: argparse.Namespace) -> int:
    dt.date.fromisoformat(args.as_of)
    target = args.target or os.environ.get("CRM_TARGET") or "duckdb"
    if target in ENGINES:
        return _run_engine(args, target)
    os.environ["CRM_TARGET"] = "duckdb"  # what every build below reads
    results = benchmark(args.customers, args.data_dir, args.as_of, args.seed, args.dirty,
                        args.skip_reference, args.skip_incremental, args.skip_gate,
                        check=not args.no_check, project_dir=args.project_dir,
                        reference_memory_limit=args.reference_memory_limit)
    out = args.out or DEFAULT_OUT_DIR / f"bench-{args.customers}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(format_table(results))
    print(f"\nwrote {out}")
    failed = [s["step"] for s in results["steps"]
              if s["status"].startswith(("failed", "out of memory"))]
    return 1 if failed else 0


def _run_engine(args: argparse.Namespace, target: str) -> int:
    results = engine_benchmark(target, args.customers, args.data_dir, args.as_of, args.seed,
                               args.dirty, args.skip_incremental, project_dir=args.project_dir)
    out = args.out or DEFAULT_OUT_DIR / f"bench-{args.customers}-{target}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(format_table(results))
    print(f"\nwrote {out}")
    return 1 if any(s["status"] != "ok" for s in results["steps"]) else 0


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--reference-worker":
        _reference_worker(*sys.argv[2:6])
    else:
        sys.exit("usage: crm-tags bench --customers N (see crm-tags bench --help)")
