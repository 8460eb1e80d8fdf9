"""The same project on Spark (docs/engines.md, "Spark"): a local Spark session (profiles.yml's
spark output, method session), its warehouse folder and Derby metastore created for this file
and removed at its end.

One landing zone, built once on each engine (the fixture `spark_build`): a small generated dirty
zone (150 customers, seed 7, 5% dirt) with the hand-made edge cases of tests/test_warehouse.py
added to it, as of the hand-made run date. Their keys are disjoint (the generator's ids are
AC00000001-style, its e-mail domains qq.com, 163.com, ...; the hand-made ones a1, k1,
example.com, ...; the fixture checks it), so each customer's tags come from its own rows; what
the customers share (the LTV fit, quantiles) is computed over both, identically on both engines.
The spark build (one process of the spark environment: the landing zone read natively by
spark__register_landing_zone, dbt in waves around the Python models run on the host) gives
marts.customer_tags, marts.customer_profile and audit.reconciliation equal row for row to the
duckdb build's (floats to 1e-6). A delivery error (values that do not cast, a missing required
column) stops a spark build with DuckDB's message naming table, file and column. The quality
gate passes on the Spark build (every check run by Spark SQL), and fails naming
tag_marts.values_in_catalog once a tag row is planted through Spark SQL.

Needs the spark target's own environment (`make install-spark`: .venv-spark with dbt-spark and
pyspark; Java 17); CI installs it.
The compared relations are read by Spark in a process of their own and compared from a
Parquet copy; the build's process has ended by then, so no Spark process of the test holds the
metastore (one process at a time can open it: a later test opens it again).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import NamedTuple

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import LandingZone, ts
from test_postgres import COMPARED, _rows, assert_equal_rows, duckdb_rows
from test_warehouse import AS_OF, write_scenario

from crm_tags.build import DbtError, build, spark_python
from crm_tags.quality.gate import GateResult, run_gate

try:
    SPARK_PYTHON = spark_python()
except DbtError as error:
    pytest.skip(str(error), allow_module_level=True)


class SparkBuild(NamedTuple):
    """What the one Spark build of this file left: its CRM_SPARK_DIR (warehouse folder and
    metastore, free: no process holds it), the DuckDB warehouse built from the same zone, the
    landing zone and the run date."""

    spark_dir: Path
    warehouse: Path
    raw: Path
    as_of: str


def write_test_zone(raw: Path) -> None:
    """The generated dirty zone, then the hand-made edge cases in the same table folders (the
    generator clears the folders first, so it goes first)."""
    from crm_tags.generate import generate_landing_zone

    generate_landing_zone(raw, 150, seed=7, as_of=dt.date.fromisoformat(AS_OF), dirty=0.05)
    write_scenario(LandingZone(raw))
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


@pytest.fixture(scope="module")
def spark_build(tmp_path_factory):
    """The one Spark build of this file (and the DuckDB reference build of the same zone,
    without dbt unit tests: they test the SQL, not the engine's data; the data tests run on
    both). Yields a SparkBuild; the Spark folder is removed at the end of the file."""
    tmp = tmp_path_factory.mktemp("spark_build")
    raw = tmp / "raw"
    write_test_zone(raw)
    warehouse = tmp / "warehouse.duckdb"
    build(raw, warehouse, AS_OF, target_path=tmp / "duck_target", quiet=True, unit_tests=False)
    spark_dir = tmp / "spark"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRM_TARGET", "spark")
        patch.setenv("CRM_SPARK_DIR", str(spark_dir))
        build(raw, tmp / "unused.duckdb", AS_OF, target_path=tmp / "spark_target", quiet=True,
              unit_tests=False)
    yield SparkBuild(spark_dir, warehouse, raw, AS_OF)
    shutil.rmtree(spark_dir, ignore_errors=True)


EXPORTED = [*COMPARED, "python_models.tag_ltv"]


def spark_rows(spark_dir: Path, relation: str) -> tuple[list[str], list[tuple]]:
    """A Spark table or view, read by Spark (a process of its own: crm_tags.spark_host --export,
    so no Spark process outlives it holding the metastore) and compared from its Parquet copy.
    The relations the tests read are exported together, once (a JVM start each time)."""
    out = spark_dir / "export"
    target = out / f"{relation}.parquet"
    if not target.exists():
        subprocess.run([str(SPARK_PYTHON), "-m", "crm_tags.spark_host", "--export", str(out),
                        *dict.fromkeys([*EXPORTED, relation])],
                       check=True, capture_output=True, env={**os.environ, "CRM_SPARK_DIR": str(spark_dir)})
    with duckdb.connect() as con:
        result = con.sql(f"select * from read_parquet('{target}')")
        return list(result.columns), _rows(result.fetchall())


@pytest.mark.parametrize("relation", list(COMPARED))
def test_spark_build_equals_duckdb_row_for_row(spark_build, relation):
    assert_equal_rows(relation, duckdb_rows(spark_build.warehouse, relation),
                      spark_rows(spark_build.spark_dir, relation))


def test_the_zone_holds_the_hand_made_edge_cases_and_the_generated_customers(spark_build):
    columns, profile = spark_rows(spark_build.spark_dir, "marts.customer_profile")
    customers = {row[columns.index("customer_id")] for row in profile}
    # a3 is deleted, a5 rejected: neither reaches the marts on Spark either
    assert {"a1", "a2", "a4"} < customers and not {"a3", "a5"} & customers
    assert len(customers) > 100


def test_the_ltv_tag_came_from_the_host_run_model(spark_build):
    """On Spark the ltv tag's stand-in is a view over python_models.tag_ltv, which only the
    host-run Python model writes: the marts' ltv values (DuckDB's, compared above) are its."""
    columns, tags = spark_rows(spark_build.spark_dir, "marts.customer_tags")
    ltv = {(row[columns.index("customer_id")], row[columns.index("tag_value")]) for row in tags
           if row[columns.index("tag_code")] == "ltv"}
    assert len(ltv) > 50
    host_columns, host = spark_rows(spark_build.spark_dir, "python_models.tag_ltv")
    assert ltv <= {(row[host_columns.index("customer_id")], row[host_columns.index("tag_value")])
                   for row in host}


def test_a_delivery_error_stops_the_spark_build_naming_table_file_and_column(tmp_path, monkeypatch):
    """The landing-zone contract on Spark, as on DuckDB (tests/test_warehouse.py): values that
    do not cast, then a missing required column, each stop the build before any model with one
    plain message naming table, file and column (no Java stack trace). A small zone; its own
    Spark folder, and one dbt target folder for both builds (the second parses partially)."""
    landing = LandingZone(tmp_path / "raw")
    landing.deliver("crm/accounts", [{"account_id": "a1", "customer_type": "B2B", "updated_at": ts(AS_OF, 1)}])
    items = landing.deliver("orders/order_items", [{"order_id": "o1", "line_no": 1}], name="items.parquet")
    table = pq.read_table(items)
    pq.write_table(table.set_column(table.schema.get_field_index("quantity"), "quantity",
                                    pa.array(["three"], pa.string())), items)
    monkeypatch.setenv("CRM_TARGET", "spark")
    monkeypatch.setenv("CRM_SPARK_DIR", str(tmp_path / "spark"))

    def spark_build_error() -> str:
        with pytest.raises(DbtError) as error:
            build(landing.root, tmp_path / "unused.duckdb", AS_OF, target_path=tmp_path / "target",
                  quiet=True, unit_tests=False)
        message = str(error.value)
        assert "at org.apache" not in message and "Traceback" not in message, message
        return message

    message = spark_build_error()
    assert ("Delivery error in table orders/order_items, file orders/order_items/items.parquet: "
            "column 'quantity' cannot be cast to INTEGER (1 value(s), e.g. 'three'). Nothing was built."
            ) in message

    pq.write_table(table, items)  # mended; now an orders file without its status column
    bad = landing.deliver("orders/orders", [{"order_id": "o1", "account_id": "a1"}], name="bad_drop.parquet")
    pq.write_table(pq.read_table(bad).drop(["status"]), bad)
    message = spark_build_error()
    assert ("Delivery error in table orders/orders, file orders/orders/bad_drop.parquet: required "
            "column 'status' is missing (expected VARCHAR). Nothing was built.") in message


# ------------------------------------------------------------------------------------------
# The quality gate on Spark (docs/quality-gate.md, "The gate on Spark"): a gate run on the
# module's build, every check run by Spark SQL in a process of the spark environment.
# ------------------------------------------------------------------------------------------

def in_spark(spark_dir: Path, code: str) -> None:
    """Run `code` (Python, with `spark`: a session on the build's warehouse) in a process of the
    spark environment; a script file, not `python -c` (pyspark's doctest guard)."""
    script = spark_dir.parent / "in_spark.py"
    script.write_text("from crm_tags.spark_host import spark_session\nspark = spark_session()\n"
                      + textwrap.dedent(code) + "\nspark.stop()\n")
    done = subprocess.run([str(SPARK_PYTHON), str(script)], capture_output=True, text=True,
                          check=False, env={**os.environ, "CRM_SPARK_DIR": str(spark_dir)})
    assert done.returncode == 0, done.stderr[-3000:]


def run_spark_gate(build: SparkBuild, runtime_dir: Path, **kwargs) -> GateResult:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRM_SPARK_DIR", str(build.spark_dir))
        return run_gate(engine="spark", manifest=build.spark_dir.parent / "spark_target" / "manifest.json",
                        runtime_dir=runtime_dir, **kwargs)


def test_the_gate_passes_on_the_spark_build_and_names_what_it_cannot_check(spark_build, tmp_path):
    result = run_spark_gate(spark_build, tmp_path / "gx")
    assert result.passed, result.report()
    assert result.warehouse == f"spark:{spark_build.spark_dir}/warehouse"
    assert {suite.checkpoint for suite in result.suites} == {
        "landing_zone", "core", "tag_marts", "authoritative_sources"}
    # every check was evaluated by Spark (none errored), the problem queries among them
    assert result.checks and all(check.status == "passed" for check in result.checks)
    suites = {suite.suite for suite in result.suites}
    assert {"landing_zone.contract", "core.amounts_reconcile", "core.fct_orders.unique_key",
            "tag_marts.values_in_catalog", "authoritative_sources.order_system_figures"} <= suites
    # the histories are not built on Spark: their checks are named as not run, not skipped silently
    assert any(note.startswith("tag history not checked: marts.customer_tag_history")
               and note.endswith("not built on spark (docs/engines.md)") for note in result.notes)
    assert any(note.startswith("segment history not checked") for note in result.notes)
    assert result.data_docs is not None and result.data_docs.exists()
    print(f"gate on spark: {result.seconds:.1f} s")


def test_a_tag_value_corrupted_through_spark_sql_fails_the_gate_naming_the_check(spark_build,
                                                                                 tmp_path):
    # marts.customer_tags is a view over intermediate.int_customer_tag_values: a row planted
    # there (a new Parquet file of the table) is a customer_grade no catalog has
    table = spark_build.spark_dir / "warehouse" / "intermediate.db" / "int_customer_tag_values"
    before = set(table.rglob("*"))
    in_spark(spark_build.spark_dir, """
        table = "intermediate.int_customer_tag_values"
        columns = ", ".join("'not_a_grade'" if c == "tag_value" else c
                            for c in spark.table(table).columns)
        spark.sql(f"insert into {table} select {columns} from {table} "
                  "where tag_code = 'customer_grade' limit 1")
        """)
    try:
        result = run_spark_gate(spark_build, tmp_path / "gx", checkpoints=["tag_marts"],
                                build_docs=False)
    finally:
        # the planted row's file removed: the module's build is as it was
        for path in sorted(set(table.rglob("*")) - before, reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    assert not result.passed
    assert {finding.suite for finding in result.failures} == {"tag_marts.values_in_catalog"}
    assert "customer_grade = 'not_a_grade' is not one of the catalog's codes" in result.report()
