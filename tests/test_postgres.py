"""The same project on PostgreSQL (docs/engines.md): every cross-engine test shares one
throwaway PostgreSQL 15 cluster (crm_tags.pg_server), started here and stopped at the end.

One landing zone, built once on each engine and read by most tests (`shop`): the hand-made
edge cases of tests/test_warehouse.py and a generated dirty zone (150 customers; disjoint
keys) in one zone, then two daily deliveries with the edge cases of tests/test_incremental.py.
On PostgreSQL: a gated first build (crm-tags load, dbt in waves around the Python models into
candidate schemas, the gate in PostgreSQL, the schemas swapped in with the bi schema), a daily
incremental build run by Dagster (its full_build job, the same write-audit-publish), a gated
daily build the gate refuses (a steward's bound it cannot meet: every published schema stays
as it was) and the same build gated and published after an erasure request; on DuckDB the
same run dates, the later ones
rebuilt from scratch (--full-refresh), the last one gated and published with the same erasure
log. After each run date marts.customer_tags, marts.customer_profile and audit.reconciliation,
the histories, segments and tag health are equal row for row (floats to 1e-6). The loader
(incremental, idempotent, the landing-zone contract) is tested on small databases of its own.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest
from conftest import LandingZone, import_code_location
from test_warehouse import AS_OF, write_scenario

from crm_tags.contract import write_delivery
from crm_tags.load import DeliveryError, load, pg_connect_kwargs
from crm_tags.pg_server import throwaway_cluster

psycopg2 = pytest.importorskip("psycopg2")

COMPARED = {
    "marts.customer_tags": None,
    "marts.customer_profile": None,
    "audit.reconciliation": None,
}
GENERATED_AS_OF = "2026-06-30"  # the run date of tests/test_spark.py's generated zone


@pytest.fixture(scope="module")
def server():
    with throwaway_cluster() as env:
        yield env


@pytest.fixture
def pg_env(server, monkeypatch):
    """A fresh database on the shared server, as the CRM_PG_* environment of the postgres target."""
    return _new_database(server, monkeypatch)


def _new_database(server: dict, monkeypatch) -> dict:
    name = f"crm_{os.getpid()}_{next(_databases)}"
    conn = psycopg2.connect(**_kwargs(server, "postgres"))
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"create database {name}")
    finally:
        conn.close()
    env = dict(server, CRM_PG_DATABASE=name)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def _counter():
    n = 0
    while True:
        n += 1
        yield n


_databases = _counter()


def _kwargs(env: dict, database: str | None = None) -> dict:
    return {"host": env["CRM_PG_HOST"], "port": int(env["CRM_PG_PORT"]), "user": env["CRM_PG_USER"],
            "dbname": database or env["CRM_PG_DATABASE"]}


def _normal(value):
    if isinstance(value, float):
        return round(value, 6) if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return round(float(value), 6)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def write_test_zone(raw: Path) -> LandingZone:
    """The cross-engine files' landing zone (`shop` here, tests/test_spark.py): the generated
    dirty zone (150 customers, seed 7, 5% dirt), then the hand-made edge cases in the same table
    folders (the generator clears the folders first, so it goes first). Returns the hand-made
    cases' LandingZone (later deliveries number their files after them)."""
    from crm_tags.generate import generate_landing_zone

    generate_landing_zone(raw, 150, seed=7, as_of=dt.date.fromisoformat(AS_OF), dirty=0.05)
    landing = LandingZone(raw)
    write_scenario(landing)
    # the two parts share no account id and no e-mail domain: the generator's files are named
    # by their delivery date (2025-...), the hand-made ones delivery_NNN
    with duckdb.connect() as con:
        def values(sql: str, files: str) -> set:
            found = {r[0] for r in con.sql(sql.format(files=files)).fetchall()}
            assert found, files
            return found

        emails = "split_part(lower(trim(email)), '@', 2)"
        for sql, table in [
            ("select distinct account_id from read_parquet('{files}', union_by_name = true)", "crm/accounts"),
            (f"select distinct {emails} from read_parquet('{{files}}', union_by_name = true)", "crm/contacts"),
        ]:
            generated = values(sql, f"{raw}/{table}/2*.parquet")
            hand_made = values(sql, f"{raw}/{table}/delivery_*.parquet")
            assert not generated & hand_made, table
    return landing


def _rows(rows) -> list[tuple]:
    return sorted((tuple(_normal(v) for v in row) for row in rows), key=repr)


def duckdb_rows(warehouse: Path, relation: str) -> tuple[list[str], list[tuple]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        result = con.sql(f"select * from {relation}")
        return list(result.columns), _rows(result.fetchall())


def postgres_rows(env: dict, relation: str) -> tuple[list[str], list[tuple]]:
    with psycopg2.connect(**_kwargs(env)) as conn, conn.cursor() as cur:
        cur.execute(f"select * from {relation}")
        return [d.name for d in cur.description], _rows(cur.fetchall())


def dagster_build_on_postgres(raw: Path, as_of: str, tmp: Path, code_location) -> Any:
    """Dagster's `full_build` job for the run date `as_of`, in process, with CRM_TARGET=postgres:
    crm-tags build's write-audit-publish on the shop's database (orchestration.engine_runs);
    its ExecuteInProcessResult."""
    from orchestration.quality_checks import QualityGate
    from orchestration.resources import Warehouse

    defs = code_location.build_definitions(
        warehouse=Warehouse(raw_dir=str(raw), published_path=str(tmp / "warehouse.duckdb"),
                            candidate_path=str(tmp / "unused.candidate.duckdb")),
        gate=QualityGate(runtime_dir=str(tmp / "gx")))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRM_TARGET", "postgres")
        return defs.resolve_job_def("full_build").execute_in_process(
            partition_key=as_of, raise_on_error=False)


def assert_equal_rows(relation: str, duckdb_side: tuple, other_side: tuple) -> None:
    """One relation's (columns, normalised rows) on DuckDB and on another engine are equal, row
    for row, and not empty; the cross-engine files (PostgreSQL, Spark) share it."""
    (duck_columns, duck), (other_columns, other) = duckdb_side, other_side
    assert other_columns == duck_columns, relation
    assert len(other) == len(duck), relation
    differing = [(d, o) for d, o in zip(duck, other, strict=True) if d != o]
    assert not differing, f"{relation}: {len(differing)} rows differ, e.g. {differing[:3]}"
    assert duck, f"{relation} is empty: the comparison would prove nothing"


def assert_same_rows(warehouse: Path, other_rows, relations=COMPARED) -> None:
    """Each relation of the DuckDB `warehouse` equals `other_rows(relation)`."""
    for relation in relations:
        assert_equal_rows(relation, duckdb_rows(warehouse, relation), other_rows(relation))


def build_and_publish_on_postgres(raw: Path, as_of: str, tmp: Path, **options):
    """`crm-tags build` on postgres (build, the gate in PostgreSQL, publish), its result."""
    from crm_tags.pg_publish import build_and_publish_postgres

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRM_TARGET", "postgres")
        return build_and_publish_postgres(raw, tmp / "warehouse.duckdb", as_of,
                                          target_path=tmp / "pg_target", runtime_dir=tmp / "gx",
                                          **options)


def gated_build_on_postgres(raw: Path, as_of: str, tmp: Path, full_refresh: bool = False):
    """build_and_publish_on_postgres, which must publish."""
    result = build_and_publish_on_postgres(raw, as_of, tmp, full_refresh=full_refresh)
    assert result.published, result.report()
    return result


# What is kept over time, compared after each run date (the histories only make sense over
# several run dates): the tag history, the runs and transitions, the segments and tag health.
HISTORY_COMPARED = {
    "marts.customer_tag_history": None,
    "marts.contact_tag_history": None,
    "marts.tag_runs": None,
    "marts.tag_transitions": None,
    "marts.segment_members": None,
    "marts.segment_catalog": None,
    "marts.segment_membership_history": None,
    "marts.tag_health": None,
    "marts.tag_health_flags": None,
}
DAY0 = dt.date.fromisoformat(AS_OF)  # the hand-made edge cases' run date, and the first one
FORGOTTEN = "a1"  # a hand-made customer with two contacts, one sharing its email with a4's


@dataclass
class Shop:
    """What `shop` built: the CRM_PG_* environment of its database, the landing zone, its
    directory, per run date the rows of every compared relation on each engine
    ({date: {relation: (duckdb, postgres)}}) and the PostgreSQL publish results (first and
    last run date), and the erasure: the forgotten customer's id and emails, and what BI read
    of them before the run that forgot them."""

    env: dict
    landing: LandingZone
    tmp: Path
    snapshots: dict = field(default_factory=dict)
    published: dict = field(default_factory=dict)
    forgotten: set = field(default_factory=set)
    held_before: dict = field(default_factory=dict)
    rejected: dict = field(default_factory=dict)  # rejected_build_on_postgres, before day 2's
    dagster: Any = None  # day 1's Dagster run (dagster_build_on_postgres)


def _snapshot(warehouse: Path, env: dict) -> dict:
    return {relation: (duckdb_rows(warehouse, relation), postgres_rows(env, relation))
            for relation in {**COMPARED, **HISTORY_COMPARED}}


_ON_DUCKDB = """
import json, sys
kind, kwargs = sys.argv[1], json.loads(sys.argv[2])
if kind == "build":
    from crm_tags.build import build
    build(**kwargs)
else:
    from crm_tags.quality.publish import build_and_publish
    result = build_and_publish(**kwargs)
    if not result.published:
        sys.exit(result.report())
print("the DuckDB reference ran to its end")
"""


@contextlib.contextmanager
def meanwhile_on_duckdb(kind: str, **kwargs):
    """The DuckDB reference build (`build` or `build_and_publish` with these arguments) in a
    process of its own, run while the block builds on PostgreSQL: the two builds share nothing
    but the landing zone they read, and the PostgreSQL one sets CRM_TARGET in this process."""
    arguments = json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in kwargs.items()})
    # a script file, not `python -c`: with pyspark in the environment such a process that
    # imports GX exits 0 at once (docs/engines.md), and the reference would silently be stale
    script = Path(kwargs["target_path"]).parent / "on_duckdb.py"
    script.write_text(_ON_DUCKDB)
    process = subprocess.Popen([sys.executable, str(script), kind, arguments],
                               env={**os.environ, "CRM_TARGET": "duckdb"}, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        yield
    except BaseException:
        process.kill()
        process.communicate()
        raise
    output, _ = process.communicate()
    assert process.returncode == 0 and output.rstrip().endswith("the DuckDB reference ran to its end"), (
        f"the DuckDB {kind} failed:\n{output[-6000:]}")


@pytest.fixture(scope="module")
def shop(server, tmp_path_factory) -> Shop:
    """The one landing zone most tests read, built once per engine, on three run dates:

    - day 0: the generator's dirty zone (150 customers, seed 7, 5% dirty) plus the hand-made
      edge cases (their keys are disjoint: a1.., o1_.. against AC.., SO..); DuckDB builds it,
      PostgreSQL builds, gates and publishes it (`crm-tags build`);
    - day 1: a generated daily delivery plus the day-1 edge cases of tests/test_incremental.py
      (an order whose account arrives later, events dated after the run date, a re-delivered
      line); on PostgreSQL Dagster's full_build job for that partition (crm-tags build's
      incremental write-audit-publish, gated and published), a --full-refresh rebuild on DuckDB
      (a rebuild from scratch of everything but the histories, which --full-refresh keeps);
    - day 2: the next delivery and edge cases (the late account and campaign arrive, a stale
      re-delivery, an order moved to another account and day), and customer a1 forgotten
      (`crm-tags forget`): an incremental build gated and published on PostgreSQL, a
      --full-refresh build gated and published on DuckDB, both reading the same erasure log.

    Each DuckDB build runs beside the PostgreSQL build of its date (meanwhile_on_duckdb). The
    first two build the file the last one's build_and_publish builds its candidate in (then
    renamed to the warehouse it copies): the file's path is part of dbt's profile, and the
    same path keeps dbt's partial parsing for all three.
    """
    from test_incremental import _edge_cases

    from crm_tags.bench import write_daily_delivery
    from crm_tags.privacy import ForgetError, forget
    from crm_tags.quality.publish import candidate_path

    tmp = tmp_path_factory.mktemp("shop")
    raw = tmp / "raw"
    landing = write_test_zone(raw)
    warehouse = tmp / "warehouse.duckdb"
    reference = candidate_path(warehouse)
    on_duckdb = {"raw_dir": raw, "target_path": tmp / "dbt_target", "quiet": True}
    with pytest.MonkeyPatch.context() as patch:
        shop = Shop(_new_database(server, patch), landing, tmp)
        patch.setenv("CRM_ERASURE_LOG", str(tmp / "erasure_requests.jsonl"))
        with meanwhile_on_duckdb("build", **on_duckdb, warehouse=reference, as_of=AS_OF,
                                 unit_tests=False):
            shop.published[DAY0] = gated_build_on_postgres(raw, AS_OF, tmp)
        shop.snapshots[DAY0] = _snapshot(reference, shop.env)

        day = DAY0
        write_daily_delivery(raw, day)
        day += dt.timedelta(days=1)
        _edge_cases(raw, day, 1, landing)
        code_location = import_code_location(tmp_path_factory)
        with meanwhile_on_duckdb("build", **on_duckdb, warehouse=reference, as_of=str(day),
                                 full_refresh=True, unit_tests=False):
            shop.dagster = dagster_build_on_postgres(raw, str(day), tmp, code_location)
        shop.snapshots[day] = _snapshot(reference, shop.env)

        write_daily_delivery(raw, day)
        day += dt.timedelta(days=1)
        _edge_cases(raw, day, 2, landing)
        with psycopg2.connect(**_kwargs(shop.env)) as conn, conn.cursor() as cur:
            cur.execute("select distinct lower(trim(email)) from staging.base_crm__contacts "
                        "where account_id = %s and email is not null", [FORGOTTEN])
            shop.forgotten = {FORGOTTEN, *(email for (email,) in cur.fetchall())}
        shop.held_before = _holding(shop.env, {FORGOTTEN})
        with pytest.MonkeyPatch.context() as on_postgres:
            on_postgres.setenv("CRM_TARGET", "postgres")
            with pytest.raises(ForgetError, match="unknown customer 'nobody'"):
                forget(warehouse, "nobody")
            forget(warehouse, FORGOTTEN, "erasure request, ticket 4711")
        shop.rejected = rejected_build_on_postgres(raw, str(day), tmp, shop.env)
        reference.rename(warehouse)  # the published warehouse build_and_publish copies
        with meanwhile_on_duckdb("build_and_publish", **on_duckdb, warehouse=warehouse,
                                 as_of=str(day), runtime_dir=tmp / "gx_duckdb",
                                 full_refresh=True):
            shop.published[day] = gated_build_on_postgres(raw, str(day), tmp)
        shop.snapshots[day] = _snapshot(warehouse, shop.env)
    return shop


def assert_same_snapshot(snapshot: dict, relations: dict) -> None:
    for relation in relations:
        assert_equal_rows(relation, *snapshot[relation])


def test_hand_made_edge_cases_and_a_generated_dirty_zone_equal_duckdb_row_for_row(shop):
    assert_same_snapshot(shop.snapshots[DAY0], COMPARED)
    (columns, profile), _ = shop.snapshots[DAY0]["marts.customer_profile"]
    customers = {row[columns.index("customer_id")] for row in profile}
    assert {"a1", "a2", "a4"} <= customers  # the hand-made edge cases
    assert sum(1 for c in customers if c.startswith("AC")) > 100  # the generated zone
    # the ltv tag came from the host-run Python model, with DuckDB's values
    _, (columns, tags) = shop.snapshots[DAY0]["marts.customer_tags"]
    assert sum(1 for row in tags if row[columns.index("tag_code")] == "ltv") > 50
    # the gate ran in PostgreSQL, every checkpoint, and passed
    result = shop.published[DAY0]
    assert result.gate.passed and result.gate.warehouse.startswith("postgresql://")
    assert {s.checkpoint for s in result.gate.suites} == {
        "landing_zone", "core", "tag_marts", "authoritative_sources"}
    assert sum(s.evaluated for s in result.gate.suites) > 50


def test_first_build_histories_segments_and_tag_health_equal_duckdb(shop):
    """The first build's tag histories, runs and transitions, segments and tag health equal
    DuckDB's row for row (the daily runs below compare them over the later run dates)."""
    assert_same_snapshot(shop.snapshots[DAY0], HISTORY_COMPARED)


def test_loader_is_incremental_idempotent_and_keeps_the_file_of_origin(tmp_path, pg_env):
    raw = tmp_path / "raw"
    account = {"account_id": "a1", "account_name": "Acme", "customer_type": "B2B",
               "updated_at": dt.datetime(2025, 1, 1)}
    write_delivery(raw, "crm/accounts", [account, {**account, "account_id": "a2"}], "first.parquet")
    first = load(raw, pg_connect_kwargs(), out=io.StringIO())
    assert (len(first.loaded), first.unchanged) == (1, 0)
    again = load(raw, pg_connect_kwargs(), out=io.StringIO())
    assert (again.loaded, again.unchanged) == ([], 1)
    write_delivery(raw, "crm/accounts", [{**account, "account_id": "a3"}], "second.parquet")
    second = load(raw, pg_connect_kwargs(), out=io.StringIO())
    assert second.loaded == ["crm/accounts/second.parquet"]
    with psycopg2.connect(**_kwargs(pg_env)) as conn, conn.cursor() as cur:
        cur.execute("select account_id, _source_file, _source_row_number from raw_crm.accounts order by 1")
        assert cur.fetchall() == [("a1", "crm/accounts/first.parquet", 0), ("a2", "crm/accounts/first.parquet", 1),
                                  ("a3", "crm/accounts/second.parquet", 0)]
        cur.execute("select source_file, rows_delivered from raw_landing.delivery_files order by 1")
        assert cur.fetchall() == [("crm/accounts/first.parquet", 2), ("crm/accounts/second.parquet", 1)]
    (raw / "crm/accounts/first.parquet").unlink()
    removed = load(raw, pg_connect_kwargs(), out=io.StringIO())
    assert removed.removed == ["crm/accounts/first.parquet"]
    with psycopg2.connect(**_kwargs(pg_env)) as conn, conn.cursor() as cur:
        cur.execute("select account_id from raw_crm.accounts")
        assert cur.fetchall() == [("a3",)]


def test_loader_names_table_file_and_column_of_a_delivery_error(tmp_path, pg_env):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = tmp_path / "raw" / "orders" / "orders"
    folder.mkdir(parents=True)
    pq.write_table(pa.table({"order_id": ["o1"]}), folder / "broken.parquet")
    with pytest.raises(DeliveryError, match=r"table orders/orders, file orders/orders/broken.parquet: "
                                            r"required column 'account_id' is missing"):
        load(tmp_path / "raw", pg_connect_kwargs(), out=io.StringIO())
    (folder / "broken.parquet").unlink()
    write_delivery(tmp_path / "raw", "orders/orders", [{"order_id": "o1"}], "typed.parquet")
    table = pq.read_table(folder / "typed.parquet")
    pq.write_table(table.set_column(table.schema.get_field_index("order_ts"), "order_ts",
                                    pa.array(["not a time"])), folder / "typed.parquet")
    with pytest.raises(DeliveryError, match=r"column 'order_ts' cannot be cast to TIMESTAMP \(1 value\(s\), "
                                            r"e.g. 'not a time'\)"):
        load(tmp_path / "raw", pg_connect_kwargs(), out=io.StringIO())


def test_daily_incremental_builds_on_postgres_equal_duckdb_full_rebuilds(shop):
    """The PostgreSQL incremental paths (new files only, re-ranked keys, tombstones deleted by
    the post-hook) over two daily refreshes with the edge cases of tests/test_incremental.py;
    each day equals a DuckDB rebuild from scratch (--full-refresh; itself equal to DuckDB's
    incremental one). The second one is gated in PostgreSQL too, and passes."""
    later = sorted(shop.snapshots)[1:]
    assert len(later) == 2
    for day in later:
        assert_same_snapshot(shop.snapshots[day], COMPARED)
    (columns, profile), _ = shop.snapshots[later[-1]]["marts.customer_profile"]
    assert "late_a1" in {row[columns.index("customer_id")] for row in profile}  # arrived on day 2
    gate = shop.published[later[-1]].gate
    assert gate.passed
    # compared with day 1's published run (Dagster's), not taken for it
    assert "tag_marts.distribution_swing" in {s.suite for s in gate.suites}


def test_dagster_runs_the_postgres_write_audit_publish_and_reports_each_asset_and_check(shop):
    """Day 1 was Dagster's full_build job with CRM_TARGET=postgres: crm-tags build's path (load,
    waves, candidate schemas, the gate in PostgreSQL, the swap), whose tables the test above
    compares with DuckDB's; the run reports each model's materialisation and each dbt test's
    check from dbt's run results, the gate's checkpoints from its result, and publishes."""
    result, day1 = shop.dagster, sorted(shop.snapshots)[1]
    assert result.success, result.get_failed_step_keys()
    built = {tuple(e.asset_key.path): e for e in result.get_asset_materialization_events()}
    assert {("marts", "customer_tags"), ("tags", "tag_ltv"), ("marts", "ltv_model_fits"),
            ("publish", "candidate"), ("publish", "warehouse")} <= set(built)
    assert all(e.partition == day1.isoformat() for e in built.values())
    profile = built[("marts", "customer_profile")].event_specific_data.materialization.metadata
    assert profile["target"].value == "postgres" and profile["dbt_status"].value == "success"
    checks = result.get_asset_check_evaluations()
    dbt_checks = [c for c in checks if c.asset_key.path[0] != "publish"
                  and c.check_name != "fresh_for_cadence"]
    assert len(dbt_checks) > 100 and all(c.passed for c in dbt_checks), [
        (c.asset_key, c.check_name) for c in dbt_checks if not c.passed]
    gx = {c.check_name: c for c in checks if c.asset_key.path == ["publish", "candidate"]}
    assert set(gx) == {"gx_landing_zone", "gx_core", "gx_tag_marts", "gx_authoritative_sources"}
    assert all(c.passed and c.metadata["suites"].value.count("|") > 10 for c in gx.values())
    published = built[("publish", "warehouse")].event_specific_data.materialization.metadata
    assert published["target"].value == "postgres"
    assert published["warehouse"].value.startswith("postgresql://")
    assert "Swapped in:" in published["report"].value
    # its distribution was recorded at publish: the next runs' swing baseline
    with psycopg2.connect(**_kwargs(shop.env)) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from audit.tag_distribution_history where as_of_date = %s",
                    [day1])
        assert cur.fetchone()[0] > 0


def test_daily_histories_segments_and_tag_health_equal_duckdb(shop):
    """After each daily run, what is kept over time equals DuckDB's row for row: the tag
    histories (replace_periods on PostgreSQL), tag runs and transitions, the segments (their
    Python models run on the host) and their membership history, tag health and its flags."""
    for n, day in enumerate(sorted(shop.snapshots)[1:], start=1):
        snapshot = shop.snapshots[day]
        assert_same_snapshot(snapshot, HISTORY_COMPARED)
        (_, runs), _ = snapshot["marts.tag_runs"]
        assert {row[-1] for row in runs} == {(day - dt.timedelta(days=k)).isoformat() for k in range(n + 1)}
    # the history holds periods that ended (tag values changed between the run dates)
    (columns, history), _ = snapshot["marts.customer_tag_history"]
    assert any(row[columns.index("valid_to")] is not None for row in history)


# --- what BI reads on PostgreSQL: the bi schema, through the BI role (docs/privacy.md) --------

DENIED_SCHEMAS = ("raw_crm", "staging", "intermediate", "core", "audit", "marts", "tags",
                  "reference", "python_models")


def _bi_connection(env: dict):
    """A login role of the BI group role crm_bi, as a BI tool would connect."""
    with psycopg2.connect(**_kwargs(env)) as conn, conn.cursor() as cur:
        cur.execute("select 1 from pg_roles where rolname = 'bi_reader'")
        if cur.fetchone() is None:
            cur.execute("create role bi_reader login in role crm_bi")
    return psycopg2.connect(**{**_kwargs(env), "user": "bi_reader"})


def _reachable_values(env: dict) -> dict[str, set[str]]:
    """schema.table.column -> distinct values as text, of every table the BI role can select."""
    seen: dict[str, set[str]] = {}
    with _bi_connection(env) as conn, conn.cursor() as cur:
        # a name in a schema the role may not use cannot even be looked up: by oid
        cur.execute("select n.nspname, c.relname, a.attname from pg_class as c "
                    "join pg_namespace as n on n.oid = c.relnamespace "
                    "join pg_attribute as a on a.attrelid = c.oid and a.attnum > 0 "
                    "and not a.attisdropped where c.relkind in ('r', 'v', 'm', 'p', 'f') "
                    "and n.nspname not in ('pg_catalog', 'information_schema') "
                    "and n.nspname not like 'pg_toast%%' "
                    "and has_schema_privilege(n.oid, 'usage') "
                    "and has_table_privilege(c.oid, 'select')")
        for schema, table, column in cur.fetchall():
            cur.execute(f'select distinct cast("{column}" as text) from "{schema}"."{table}"')
            seen[f"{schema}.{table}.{column}"] = {r[0] for r in cur.fetchall() if r[0] is not None}
    return seen


def _holding(env: dict, values: set[str]) -> dict[str, list[str]]:
    return {name: sorted(found & values)[:3] for name, found in _reachable_values(env).items()
            if found & values}


def test_the_bi_role_reads_the_bi_schema_and_nothing_else(shop):
    env = shop.env
    assert "customer_profile.account_name" in shop.published[max(shop.published)].privacy
    with psycopg2.connect(**_kwargs(env)) as conn, conn.cursor() as cur:
        cur.execute("select table_name from information_schema.tables where table_schema = 'marts'")
        marts = {r[0] for r in cur.fetchall()}
        examples = {}
        for schema in DENIED_SCHEMAS:
            cur.execute("select table_name from information_schema.tables where table_schema = %s"
                        " limit 1", [schema])
            examples[schema] = cur.fetchone()[0]
    reachable = {name.rsplit(".", 1)[0] for name in _reachable_values(env)}
    assert reachable == {f"bi.{table}" for table in marts}
    with _bi_connection(env) as conn:
        with conn.cursor() as cur:
            cur.execute("select count(*) from bi.customer_profile")
            assert cur.fetchone()[0] > 0
        conn.rollback()
        for schema, table in examples.items():
            with conn.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege,
                                                     match=f"permission denied for schema {schema}"):
                cur.execute(f'select * from "{schema}"."{table}" limit 1')
            conn.rollback()


def test_the_bi_role_reaches_no_personal_value_and_joins_on_pseudonyms(shop):
    from test_privacy import _landing_values

    from crm_tags.privacy import load_key, pseudonym

    env = shop.env
    personal = _landing_values(shop.landing.root)
    assert personal
    assert _holding(env, personal) == {}
    # the same keyed hash as DuckDB's BI file: stable for joins, computed with the key
    key = load_key()
    with psycopg2.connect(**_kwargs(env)) as conn, conn.cursor() as cur:
        cur.execute("select customer_id, account_name from marts.customer_profile "
                    "where account_name is not null")
        expected = {(c, pseudonym(key, name, "name")) for c, name in cur.fetchall()}
    assert expected
    with _bi_connection(env) as conn, conn.cursor() as cur:
        cur.execute("select customer_id, account_name from bi.customer_profile "
                    "where account_name is not null")
        assert set(cur.fetchall()) == expected


def test_a_forgotten_customer_leaves_everything_the_bi_role_reads_at_the_next_daily_run(shop):
    """Customer a1 forgotten before the last run date: that incremental build (which reads
    their rows again from the landing zone) publishes without them, its segment counts are the
    published members', and DuckDB's publish with the same erasure log gives the same marts
    (the daily tests above compare them row for row)."""
    env, last = shop.env, max(shop.published)
    assert len(shop.forgotten) >= 3  # the id and its contacts' emails
    assert shop.held_before  # before that run, BI still read them
    assert "Erasure log: 1 customer(s) forgotten" in shop.published[last].privacy
    assert _holding(env, shop.forgotten) == {}
    with _bi_connection(env) as conn, conn.cursor() as cur:
        # the published counts are those of the published members (the erasure ran after dbt)
        cur.execute("""
            select catalog.segment_code, catalog.member_count, runs.member_count,
                (select count(*) from bi.segment_members as members
                 where members.segment_code = catalog.segment_code)
            from bi.segment_catalog as catalog
            join bi.segment_runs as runs on runs.segment_code = catalog.segment_code
                and runs.as_of_date = catalog.as_of_date
        """)
        counts = cur.fetchall()
    assert counts
    assert [row for row in counts if not row[1] == row[2] == row[3]] == []
    with psycopg2.connect(**_kwargs(env)) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from marts.customer_profile where customer_id = %s", [FORGOTTEN])
        assert cur.fetchone()[0] == 0
        cur.execute("select count(*) from staging.base_crm__accounts where account_id = %s",
                    [FORGOTTEN])
        assert cur.fetchone()[0] >= 1  # the landing zone keeps their rows
    (columns, duck_profile), _ = shop.snapshots[last]["marts.customer_profile"]
    assert FORGOTTEN not in {row[columns.index("customer_id")] for row in duck_profile}


# --- write-audit-publish of every schema on PostgreSQL (crm_tags.pg_publish) ----------------

STEWARD = "steward_reader"  # a role the published schemas are granted to (not the BI role)
WATCHED = ("audit.reconciliation", "marts.customer_tags", "marts.tag_runs", "bi.customer_tags")


def _published_state(env: dict) -> dict:
    return {relation: postgres_rows(env, relation) for relation in WATCHED}


def _schemas(env: dict, pattern: str) -> list[str]:
    with psycopg2.connect(**_kwargs(env)) as conn, conn.cursor() as cur:
        cur.execute("select nspname from pg_namespace where nspname like %s order by 1", [pattern])
        return [row[0] for row in cur.fetchall()]


def rejected_build_on_postgres(raw: Path, as_of: str, tmp: Path, env: dict) -> dict:
    """Day 2's delivery built and gated once under a steward's policy it cannot meet (a copy
    of expectations/gate.yml bounding the share of graded customers to 0): what was published
    before and after that build, the rejected candidate and the result. Before it, a steward
    role is given the published marts the way a DBA does (USAGE, and SELECT on the tables dbt
    creates there by default privileges): the candidate schemas carry those grants."""
    import yaml

    from crm_tags.quality.gate import POLICY

    with psycopg2.connect(**_kwargs(env)) as conn, conn.cursor() as cur:
        cur.execute(f"create role {STEWARD} login")
        cur.execute(f"grant usage on schema marts to {STEWARD}")
        cur.execute(f"alter default privileges in schema marts grant select on tables to {STEWARD}")
    policy = yaml.safe_load(POLICY.read_text())
    policy["distribution"]["bounds"] = {"customer_grade": {"*": {"max": 0.0}}}
    strict = tmp / "strict-gate.yml"
    strict.write_text(yaml.safe_dump(policy))
    before = _published_state(env)
    result = build_and_publish_on_postgres(raw, as_of, tmp, policy=strict)
    with psycopg2.connect(**_kwargs(env)) as conn, conn.cursor() as cur:
        cur.execute("select to_regclass('audit__rejected.reconciliation')")
        rejected_as_of = None
        if cur.fetchone()[0]:  # kept (a build in place keeps no candidate: the test says so)
            cur.execute("select max(as_of_date) from audit__rejected.reconciliation")
            rejected_as_of = cur.fetchone()[0]
    return {"result": result, "before": before, "after": _published_state(env),
            "rejected_as_of": rejected_as_of, "rejected": _schemas(env, "%\\_\\_rejected")}


def test_a_gate_failure_leaves_every_published_schema_as_it_was(shop):
    """The gate refuses day 2's build (a steward's bound it cannot meet; tag_marts.
    distribution_bounds): the published schemas (marts, audit, the histories, bi) are as they
    were, row for row, and the candidate is kept as <schema>__rejected, holding day 2. The
    next build (day 2 under the usual policy) publishes: the tests above compare it with
    DuckDB, and after it no candidate, rejected or replaced schema is left."""
    rejected, day2 = shop.rejected, max(shop.snapshots)
    result = rejected["result"]
    assert not result.published
    assert {f.suite for f in result.gate.failures} == {"tag_marts.distribution_bounds"}
    assert rejected["after"] == rejected["before"]  # main built in place: marts moved to day 2
    report = result.report()
    assert "NOT published" in report and "marts__rejected" in report
    (_, runs) = rejected["after"]["marts.tag_runs"]
    assert max(row[-1] for row in runs) == (day2 - dt.timedelta(days=1)).isoformat()
    assert rejected["rejected_as_of"] == day2
    assert {"marts__rejected", "audit__rejected", "python_models__rejected"} <= set(rejected["rejected"])
    assert "bi__rejected" not in rejected["rejected"]  # bi is written only after a passing gate
    assert shop.published[day2].published
    assert _schemas(shop.env, "%\\_\\_%") == []


def test_the_swap_keeps_views_bound_to_the_published_schemas_and_the_stewards_grants(shop):
    """After the swap the views of the published schemas read the published tables (a view
    binds to OIDs: the candidate's views followed their tables through the renames), and a
    steward granted the published marts before (USAGE, default privileges) still reads them:
    the candidate schemas carried the grants."""
    env = shop.env
    with psycopg2.connect(**_kwargs(env)) as conn, conn.cursor() as cur:
        cur.execute("""
            select view_ns.nspname || '.' || view.relname, used_ns.nspname
            from pg_depend as dep
            join pg_rewrite as rule on rule.oid = dep.objid
            join pg_class as view on view.oid = rule.ev_class
            join pg_namespace as view_ns on view_ns.oid = view.relnamespace
            join pg_class as used on used.oid = dep.refobjid
            join pg_namespace as used_ns on used_ns.oid = used.relnamespace
            where dep.classid = 'pg_rewrite'::regclass
              and dep.refclassid = 'pg_class'::regclass and used.oid <> view.oid
              and view_ns.nspname in ('marts', 'intermediate', 'staging', 'core', 'tags')
        """)
        reads = cur.fetchall()
    assert {view for view, _ in reads} >= {"marts.customer_tags"}
    assert [(view, schema) for view, schema in reads if "__" in schema] == []
    _, (_, published) = shop.snapshots[max(shop.snapshots)]["marts.customer_tags"]
    assert postgres_rows(env, "marts.customer_tags")[1] == published
    with psycopg2.connect(**{**_kwargs(env), "user": STEWARD}) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from marts.customer_tags")
        assert cur.fetchone()[0] == len(published)
        cur.execute("select count(*) from marts.customer_profile")
        assert cur.fetchone()[0] > 0


def test_a_selection_runs_the_python_models_of_its_selected_stand_ins_first(shop, monkeypatch):
    """`crm-tags build --select` (and a Dagster job's selection) on an engine without Python
    models: dbt resolves the selection once (`dbt ls`), wave 0 builds its part not downstream
    of a stand-in, a selected stand-in's Python model runs on the host before the wave that
    builds the stand-in and what reads it, and only the selection's nodes are built there; the
    histories learn which tag models the whole build computes. Planned on the shop's manifest
    with dbt and the host runs recorded, not run."""
    from crm_tags import python_on_host

    manifest_path = shop.tmp / "pg_target" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    chosen = {"tag_ltv", "customer_profile", "tag_recency"}
    uids = [uid for uid, n in manifest["nodes"].items() if n["name"] in chosen
            or (n["resource_type"] == "test" and set(n["depends_on"]["nodes"]) & {
                u for u, m in manifest["nodes"].items() if m["name"] in chosen})]
    calls, ran = [], []

    def dbt(args: list[str]) -> str:
        calls.append((args, os.environ.get(python_on_host.COMPUTED_TAG_MODELS_ENV)))
        if args[0] == "ls":
            return "12:00:00  Running with dbt\n" + "\n".join(
                json.dumps({"unique_id": uid}) for uid in uids)
        return ""

    monkeypatch.setattr(python_on_host, "run_model", lambda conn, m, node: ran.append(node["name"]))
    target = shop.tmp / "selection_plan"
    target.mkdir()
    (target / "manifest.json").write_text(manifest_path.read_text())
    python_on_host.build_in_waves(dbt, lambda: SimpleNamespace(close=lambda: None),
                                  lambda: target / "manifest.json", ["--full-refresh"],
                                  select=" ".join(sorted(chosen)))
    assert ran == ["tag_ltv"]  # the fit (level 0) is not selected: its published result is read
    (ls, _), (wave0, computed), *waves = calls
    assert ls[:3] == ["ls", "--select", "customer_profile tag_ltv tag_recency"]
    assert wave0 == ["build", "--full-refresh", "--select", "customer_profile tag_ltv tag_recency",
                     "--exclude", f"path:{python_on_host.STAND_INS}+"]
    assert computed == "customer_profile,tag_ltv,tag_recency"
    [(wave1, computed1)] = waves
    built = set(wave1[wave1.index("--select") + 1:wave1.index("--indirect-selection")])
    assert {"tag_ltv", "customer_profile"} <= built <= {manifest["nodes"][u]["name"] for u in uids}
    assert "tag_recency" not in built  # wave 0's: no Python model upstream
    assert computed1 == computed
