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
A JVM start is the fixed cost here, so the build is read by one process of the spark
environment (the fixture `spark_checks`), started once its build's process has ended (a Derby
metastore admits one process at a time): it exports the compared relations (compared from their
Parquet copy), runs the gate, plants the row and runs the gate's tag_marts checkpoint, then
removes the row. The DuckDB reference build runs beside the Spark build.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import NamedTuple

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import LandingZone, ts
from test_postgres import (
    COMPARED,
    _rows,
    assert_equal_rows,
    duckdb_rows,
    meanwhile_on_duckdb,
    write_test_zone,
)
from test_warehouse import AS_OF

from crm_tags import PROJECT_DIR
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


@pytest.fixture(scope="module")
def spark_build(tmp_path_factory):
    """The one Spark build of this file, and beside it (meanwhile_on_duckdb: a process of its
    own) the DuckDB reference build of the same zone, without dbt unit tests (they test the
    SQL, not the engine's data; the data tests run on both). Yields a SparkBuild; the Spark
    folder is removed at the end of the file."""
    tmp = tmp_path_factory.mktemp("spark_build")
    raw = tmp / "raw"
    write_test_zone(raw)
    warehouse = tmp / "warehouse.duckdb"
    spark_dir = tmp / "spark"
    with meanwhile_on_duckdb("build", raw_dir=raw, warehouse=warehouse, as_of=AS_OF,
                             target_path=tmp / "duck_target", quiet=True, unit_tests=False), \
            pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRM_TARGET", "spark")
        patch.setenv("CRM_SPARK_DIR", str(spark_dir))
        build(raw, tmp / "unused.duckdb", AS_OF, target_path=tmp / "spark_target", quiet=True,
              unit_tests=False)
    yield SparkBuild(spark_dir, warehouse, raw, AS_OF)
    shutil.rmtree(spark_dir, ignore_errors=True)


EXPORTED = [*COMPARED, "python_models.tag_ltv"]


class SparkChecks(NamedTuple):
    """What the one process of the spark environment that reads the module's build left (its
    `spark_checks` fixture): the exported relations' folder, the gate run on the build as it
    is, the gate run on tag_marts with a planted row, and whether the planted row's files were
    removed again (the build as it was)."""

    export: Path
    passing: GateResult
    planted: GateResult
    planted_files_removed: bool


# In one Spark session (one JVM start, one GX import): the compared relations exported, the
# gate on the build, then a row planted through Spark SQL and the gate's tag_marts checkpoint
# run again, then the planted row's files removed. marts.customer_tags is a view over
# intermediate.int_customer_tag_values: a row planted there (a new Parquet file of the table)
# is a customer_grade no catalog has. Each gate run is the spark gate process's own
# (crm_tags.quality.spark_gate.gate_in_session), its result handed back as that process's JSON.
_CHECKS = """
import json, sys
from pathlib import Path
from crm_tags.quality.spark_gate import gate_in_session, result_to_json
from crm_tags.spark_host import export, spark_session

arguments = json.loads(Path(sys.argv[1]).read_text())
spark = spark_session()
try:
    export(arguments["relations"], Path(arguments["export"]), spark)
    passing = gate_in_session(spark, arguments["passing"])
    table_name = "intermediate.int_customer_tag_values"
    folder = Path(arguments["planted_in"])
    before = set(folder.rglob("*"))
    columns = ", ".join("'not_a_grade'" if c == "tag_value" else c
                        for c in spark.table(table_name).columns)
    spark.sql(f"insert into {table_name} select {columns} from {table_name} "
              "where tag_code = 'customer_grade' limit 1")
    try:
        planted = gate_in_session(spark, arguments["planted"])
    finally:
        for path in sorted(set(folder.rglob("*")) - before, reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
    removed = set(folder.rglob("*")) == before
finally:
    spark.stop()
Path(sys.argv[2]).write_text(json.dumps({
    "passing": result_to_json(passing), "planted": result_to_json(planted), "removed": removed}))
"""


@pytest.fixture(scope="module")
def spark_checks(spark_build, tmp_path_factory) -> SparkChecks:
    from crm_tags.quality.spark_gate import result_from_json

    tmp = tmp_path_factory.mktemp("spark_checks")
    manifest = str(spark_build.spark_dir.parent / "spark_target" / "manifest.json")
    arguments = {
        "relations": EXPORTED, "export": str(tmp / "export"),
        "planted_in": str(spark_build.spark_dir / "warehouse" / "intermediate.db" / "int_customer_tag_values"),
        "passing": {"manifest": manifest, "runtime_dir": str(tmp / "gx"), "checkpoints": None,
                    "build_docs": True},
        "planted": {"manifest": manifest, "runtime_dir": str(tmp / "gx_planted"),
                    "checkpoints": ["tag_marts"], "build_docs": False},
    }
    (tmp / "arguments.json").write_text(json.dumps(arguments))
    script = tmp / "checks.py"  # a script file, not `python -c` (pyspark's doctest guard)
    script.write_text(_CHECKS)
    done = subprocess.run([str(SPARK_PYTHON), str(script), str(tmp / "arguments.json"), str(tmp / "result.json")],
                          capture_output=True, text=True, check=False, cwd=PROJECT_DIR,
                          env={**os.environ, "CRM_SPARK_DIR": str(spark_build.spark_dir), "CRM_TARGET": "spark"})
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads((tmp / "result.json").read_text())
    return SparkChecks(tmp / "export", result_from_json(answer["passing"]),
                       result_from_json(answer["planted"]), answer["removed"])


def spark_rows(checks: SparkChecks, relation: str) -> tuple[list[str], list[tuple]]:
    """A Spark table or view as Spark read it (its Parquet copy from `spark_checks`)."""
    with duckdb.connect() as con:
        result = con.sql(f"select * from read_parquet('{checks.export / f'{relation}.parquet'}')")
        return list(result.columns), _rows(result.fetchall())


@pytest.mark.parametrize("relation", list(COMPARED))
def test_spark_build_equals_duckdb_row_for_row(spark_build, spark_checks, relation):
    assert_equal_rows(relation, duckdb_rows(spark_build.warehouse, relation),
                      spark_rows(spark_checks, relation))


def test_the_zone_holds_the_hand_made_edge_cases_and_the_generated_customers(spark_checks):
    columns, profile = spark_rows(spark_checks, "marts.customer_profile")
    customers = {row[columns.index("customer_id")] for row in profile}
    # a3 is deleted, a5 rejected: neither reaches the marts on Spark either
    assert {"a1", "a2", "a4"} < customers and not {"a3", "a5"} & customers
    assert len(customers) > 100


def test_the_ltv_tag_came_from_the_host_run_model(spark_checks):
    """On Spark the ltv tag's stand-in is a view over python_models.tag_ltv, which only the
    host-run Python model writes: the marts' ltv values (DuckDB's, compared above) are its."""
    columns, tags = spark_rows(spark_checks, "marts.customer_tags")
    ltv = {(row[columns.index("customer_id")], row[columns.index("tag_value")]) for row in tags
           if row[columns.index("tag_code")] == "ltv"}
    assert len(ltv) > 50
    host_columns, host = spark_rows(spark_checks, "python_models.tag_ltv")
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
# The quality gate on Spark (docs/quality-gate.md, "The gate on Spark"): gate runs on the
# module's build, every check run by Spark SQL in a process of the spark environment
# (`spark_checks`).
# ------------------------------------------------------------------------------------------

def test_the_gate_passes_on_the_spark_build_and_names_what_it_cannot_check(spark_build, spark_checks):
    result = spark_checks.passing
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


def test_a_tag_value_corrupted_through_spark_sql_fails_the_gate_naming_the_check(spark_checks):
    result = spark_checks.planted
    assert not result.passed
    assert {finding.suite for finding in result.failures} == {"tag_marts.values_in_catalog"}
    assert "customer_grade = 'not_a_grade' is not one of the catalog's codes" in result.report()
    assert spark_checks.planted_files_removed  # the module's build is as it was


def test_without_its_spark_process_the_gate_blocks_saying_why(tmp_path, monkeypatch):
    """run_gate(engine="spark") runs the gate in a process of the spark environment
    (crm_tags.quality.spark_gate.run_gate_on_spark); a process that gives no verdict blocks,
    with the end of its error output."""
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\necho \"no Spark here: $*\" >&2\nexit 1\n")
    python.chmod(0o755)
    monkeypatch.setenv("CRM_SPARK_VENV", str(python.parent.parent))
    monkeypatch.setenv("CRM_SPARK_DIR", str(tmp_path / "spark"))
    result = run_gate(engine="spark", runtime_dir=tmp_path / "gx", checkpoints=["tag_marts"])
    assert not result.passed
    assert result.warehouse == f"spark:{tmp_path / 'spark'}/warehouse"
    assert [finding.description for finding in result.failures] == [
        "The gate's Spark process failed, so nothing was validated."]
    assert "no Spark here: -m crm_tags.quality.spark_gate" in result.report()
