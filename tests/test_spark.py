"""The same project on Spark (docs/engines.md, "Spark"): a local Spark session (profiles.yml's
spark output, method session), its warehouse folder and Derby metastore created for this file
and removed at its end.

One landing zone, built once on each engine (the fixture `spark_run`): a small generated dirty
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
A JVM start is the fixed cost here, so the whole Spark side runs in one process of the
spark environment (the fixture `spark_run`, one JVM start, `_IN_ONE_PROCESS`): the build as
`crm-tags build`'s spark process runs it (crm_tags.spark_host.build_in_this_process, the session
kept), then the compared relations exported (compared from their Parquet copy), the gate, the
planted row and the gate's tag_marts checkpoint, the row removed, and last the two
delivery-error builds. That `crm-tags build` hands the spark build to such a process with this
request and environment is checked with a stand-in interpreter (no JVM). The DuckDB reference
build runs beside the Spark process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
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
from crm_tags.build import DbtError, build, dbt_env, spark_python
from crm_tags.quality.gate import GateResult, run_gate

try:
    SPARK_PYTHON = spark_python()
except DbtError as error:
    pytest.skip(str(error), allow_module_level=True)


class SparkBuild(NamedTuple):
    """What the one Spark build of this file left: its CRM_SPARK_DIR (warehouse folder and
    metastore), the DuckDB warehouse built from the same zone, the landing zone and the run
    date."""

    spark_dir: Path
    warehouse: Path
    raw: Path
    as_of: str


class SparkChecks(NamedTuple):
    """What the one process of the spark environment left after the build (see `_IN_ONE_PROCESS`):
    the exported relations' folder, the gate run on the build as it is, the gate run on
    tag_marts with a planted row, whether the planted row's files were removed again (the build
    as it was), and each delivery-error build's exit status and failure message."""

    export: Path
    passing: GateResult
    planted: GateResult
    planted_files_removed: bool
    delivery_errors: list[tuple[int, str]]


EXPORTED = [*COMPARED, "python_models.tag_ltv"]
BUILD_FLAGS = ["--exclude-resource-type", "unit_test"]  # build(..., unit_tests=False)


def spark_build_request(target_dir: Path, failure_file: Path) -> dict:
    """The request crm_tags.build.build(..., unit_tests=False) hands to the spark environment's
    process (test_build_hands_the_spark_build_to_one_process_of_the_spark_environment checks it
    is this one)."""
    return {"select": None, "flags": BUILD_FLAGS, "target_dir": str(target_dir), "project_dir": None,
            "failure_file": str(failure_file)}


# what dbt_env sets, and the spark target's two
DBT_ENV_KEYS = ["CRM_AS_OF_DATE", "CRM_RAW_DIR", "CRM_WAREHOUSE_PATH", "DBT_PROFILES_DIR", "CRM_PROJECT_DIR",
                "DBT_TARGET_PATH", "DBT_LOG_PATH", "CRM_TARGET", "CRM_SPARK_DIR"]


def spark_build_env(raw: Path, target_dir: Path, spark_dir: Path) -> dict[str, str]:
    """The environment crm_tags.build.build gives that process on the spark target."""
    return {**dbt_env(raw, target_dir.parent / "unused.duckdb", target_dir, AS_OF),
            "CRM_TARGET": "spark", "CRM_SPARK_DIR": str(spark_dir)}


# One process of the spark environment, one JVM start, one GX import (a JVM start and a dbt start
# are the fixed costs here):
# 1. the build, as `crm-tags build` runs it in its spark process (crm_tags.spark_host
#    build_in_this_process), keeping its session;
# 2. the compared relations exported, the gate on the build, then a row planted through Spark SQL
#    and the gate's tag_marts checkpoint run again, then the planted row's files removed.
#    marts.customer_tags is a view over intermediate.int_customer_tag_values: a row planted there
#    (a new Parquet file of the table) is a customer_grade no catalog has. Each gate run is the
#    spark gate process's own (crm_tags.quality.spark_gate.gate_in_session);
# 3. last (they re-register the landing zone's views of this metastore on zones of their own),
#    the delivery-error builds, each through the spark process's entry point (`--build`, which
#    writes the failure file crm_tags.build raises) on the same session: they stop in the
#    landing zone's registration, before any model. Their dbt target folder starts from the
#    build's parse (partial parsing).
# The results go back as JSON.
_IN_ONE_PROCESS = """
import json, os, shutil, sys
from pathlib import Path
from crm_tags.quality.spark_gate import gate_in_session, result_to_json
from crm_tags.spark_host import BUILD_FAILED, build_in_this_process, export, main, spark_session

arguments = json.loads(Path(sys.argv[1]).read_text())
os.environ.update(arguments["build"]["env"])
build_in_this_process(arguments["build"]["request"], keep_session=True)
spark = spark_session()
errors = []
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
    for case in arguments["delivery_errors"]:
        target = Path(case["request"]["target_dir"])
        parsed = Path(arguments["build"]["request"]["target_dir"]) / "partial_parse.msgpack"
        if not (target / parsed.name).exists():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(parsed, target / parsed.name)
        os.environ.update(case["env"])
        status = main(["--build", json.dumps(case["request"])])
        failure = Path(case["request"]["failure_file"])
        errors.append([status, failure.read_text() if failure.exists() else ""])
finally:
    spark.stop()
Path(sys.argv[2]).write_text(json.dumps({
    "passing": result_to_json(passing), "planted": result_to_json(planted), "removed": removed,
    "delivery_errors": errors}))
"""


def write_delivery_error_zones(root: Path) -> list[Path]:
    """Two small landing zones, each with one delivery error: values that do not cast
    (orders/order_items/items.parquet's quantity 'three'), then, with that file mended, an orders
    file without its status column (orders/orders/bad_drop.parquet)."""
    zones = []
    for n in (1, 2):
        landing = LandingZone(root / f"raw_{n}")
        landing.deliver("crm/accounts", [{"account_id": "a1", "customer_type": "B2B", "updated_at": ts(AS_OF, 1)}])
        items = landing.deliver("orders/order_items", [{"order_id": "o1", "line_no": 1}], name="items.parquet")
        if n == 1:
            table = pq.read_table(items)
            pq.write_table(table.set_column(table.schema.get_field_index("quantity"), "quantity",
                                            pa.array(["three"], pa.string())), items)
        else:
            bad = landing.deliver("orders/orders", [{"order_id": "o1", "account_id": "a1"}], name="bad_drop.parquet")
            pq.write_table(pq.read_table(bad).drop(["status"]), bad)
        zones.append(landing.root)
    return zones


@pytest.fixture(scope="module")
def spark_run(tmp_path_factory) -> tuple[SparkBuild, SparkChecks]:
    """The one Spark build of this file and everything read from it, in one process of the
    spark environment (`_IN_ONE_PROCESS`), and beside it (meanwhile_on_duckdb: a process of its
    own) the DuckDB reference build of the same zone, without dbt unit tests (they test the SQL,
    not the engine's data; the data tests run on both). The Spark folder is removed at the end
    of the file."""
    from crm_tags.quality.spark_gate import result_from_json

    tmp = tmp_path_factory.mktemp("spark_build")
    raw = tmp / "raw"
    write_test_zone(raw)
    warehouse = tmp / "warehouse.duckdb"
    spark_dir = tmp / "spark"
    target = tmp / "spark_target"
    manifest = str(target / "manifest.json")
    errors_target = tmp / "errors_target"  # one for both (the second parses partially)
    arguments = {
        "build": {"request": spark_build_request(target, tmp / "failure.txt"),
                  "env": spark_build_env(raw, target, spark_dir)},
        "relations": EXPORTED, "export": str(tmp / "export"),
        "planted_in": str(spark_dir / "warehouse" / "intermediate.db" / "int_customer_tag_values"),
        "passing": {"manifest": manifest, "runtime_dir": str(tmp / "gx"), "checkpoints": None,
                    "build_docs": True},
        "planted": {"manifest": manifest, "runtime_dir": str(tmp / "gx_planted"),
                    "checkpoints": ["tag_marts"], "build_docs": False},
        "delivery_errors": [
            {"request": spark_build_request(errors_target, tmp / f"failure_{n}.txt"),
             "env": spark_build_env(zone, errors_target, spark_dir)}
            for n, zone in enumerate(write_delivery_error_zones(tmp / "delivery_errors"))],
    }
    (tmp / "arguments.json").write_text(json.dumps(arguments))
    script = tmp / "in_one_process.py"  # a script file, not `python -c` (pyspark's doctest guard)
    script.write_text(_IN_ONE_PROCESS)
    with meanwhile_on_duckdb("build", raw_dir=raw, warehouse=warehouse, as_of=AS_OF,
                             target_path=tmp / "duck_target", quiet=True, unit_tests=False):
        done = subprocess.run([str(SPARK_PYTHON), str(script), str(tmp / "arguments.json"), str(tmp / "result.json")],
                              capture_output=True, text=True, check=False, cwd=PROJECT_DIR,
                              env=arguments["build"]["env"])
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads((tmp / "result.json").read_text())
    yield (SparkBuild(spark_dir, warehouse, raw, AS_OF),
           SparkChecks(tmp / "export", result_from_json(answer["passing"]),
                       result_from_json(answer["planted"]), answer["removed"],
                       [tuple(error) for error in answer["delivery_errors"]]))
    shutil.rmtree(spark_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def spark_build(spark_run) -> SparkBuild:
    return spark_run[0]


@pytest.fixture(scope="module")
def spark_checks(spark_run) -> SparkChecks:
    return spark_run[1]


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


def test_a_delivery_error_stops_the_spark_build_naming_table_file_and_column(spark_checks):
    """The landing-zone contract on Spark, as on DuckDB (tests/test_warehouse.py): values that
    do not cast, then a missing required column, each stop the build before any model with one
    plain message naming table, file and column (no Java stack trace): the spark process's
    `--build` exits with BUILD_FAILED and that message in its failure file, which
    crm_tags.build raises (test_build_hands_the_spark_build_to_one_process_of_the_spark_environment).
    Two small zones (write_delivery_error_zones), built in `spark_run`'s process."""
    from crm_tags.spark_host import BUILD_FAILED

    (_, cast_message), (_, missing_message) = spark_checks.delivery_errors
    for status, message in spark_checks.delivery_errors:
        assert status == BUILD_FAILED, message
        assert "at org.apache" not in message and "Traceback" not in message, message
    assert ("Delivery error in table orders/order_items, file orders/order_items/items.parquet: "
            "column 'quantity' cannot be cast to INTEGER (1 value(s), e.g. 'three'). Nothing was built."
            ) in cast_message
    assert ("Delivery error in table orders/orders, file orders/orders/bad_drop.parquet: required "
            "column 'status' is missing (expected VARCHAR). Nothing was built.") in missing_message


def test_build_hands_the_spark_build_to_one_process_of_the_spark_environment(tmp_path, monkeypatch):
    """crm_tags.build.build on the spark target runs `python -m crm_tags.spark_host --build
    REQUEST` in the spark environment with dbt's environment: the request and environment
    `spark_run`'s process builds with. A failed build's message (the failure file, exit status
    BUILD_FAILED) is raised as a DbtError, as it is; a build that ends well returns its output.
    A stand-in interpreter records what it was given (no JVM)."""
    from crm_tags.spark_host import BUILD_FAILED

    record = tmp_path / "record.json"
    python = tmp_path / "venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"""#!{sys.executable}
import json, os, sys
request = json.loads(sys.argv[4])
json.dump({{"argv": sys.argv[1:4], "request": request,
           "env": {{k: os.environ.get(k) for k in {DBT_ENV_KEYS!r}}}}},
          open({str(record)!r}, "w"))
if os.environ.get("STAND_IN_FAILS"):
    open(request["failure_file"], "w").write("Delivery error in table t, file t/f.parquet: ... Nothing was built.")
    sys.exit({BUILD_FAILED})
print("built")
""")
    python.chmod(0o755)
    monkeypatch.setenv("CRM_SPARK_VENV", str(python.parent.parent))
    monkeypatch.setenv("CRM_TARGET", "spark")
    monkeypatch.setenv("CRM_SPARK_DIR", str(tmp_path / "spark"))
    raw, target = tmp_path / "raw", tmp_path / "target"
    assert build(raw, tmp_path / "unused.duckdb", AS_OF, target_path=target, quiet=True,
                 unit_tests=False) == "built\n"
    given = json.loads(record.read_text())
    assert given["argv"] == ["-m", "crm_tags.spark_host", "--build"]
    assert {k: v for k, v in given["request"].items() if k != "failure_file"} == {
        k: v for k, v in spark_build_request(target, tmp_path).items() if k != "failure_file"}
    expected_env = spark_build_env(raw, target, tmp_path / "spark")
    assert given["env"] == {k: expected_env.get(k) for k in DBT_ENV_KEYS}
    assert {k: given["env"][k] for k in ["CRM_TARGET", "CRM_RAW_DIR", "DBT_TARGET_PATH", "CRM_AS_OF_DATE"]} == {
        "CRM_TARGET": "spark", "CRM_RAW_DIR": str(raw.resolve()), "DBT_TARGET_PATH": str(target),
        "CRM_AS_OF_DATE": str(AS_OF)}

    monkeypatch.setenv("STAND_IN_FAILS", "1")
    with pytest.raises(DbtError) as error:
        build(raw, tmp_path / "unused.duckdb", AS_OF, target_path=target, quiet=True, unit_tests=False)
    assert str(error.value) == "Delivery error in table t, file t/f.parquet: ... Nothing was built."


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
