"""The quality gate on the spark target: the same checkpoints, every check run by Spark SQL.

    result = run_gate_on_spark(manifest=..., runtime_dir=...)   # from any environment

pyspark lives only in the spark target's own environment (crm_tags.build.spark_python), and a
Derby metastore admits one process at a time: so the gate runs in a process of its own
(`python -m crm_tags.quality.spark_gate ARGS.json RESULT.json`) with a local Spark session on
the build's warehouse folder and metastore (crm_tags.spark_host.spark_session, profiles.yml's
spark output), and hands its GateResult back as JSON. In that process crm_tags.quality.gate
runs as on the other engines (docs/quality-gate.md, "The gate on Spark"): each suite's table or
query is a Spark DataFrame given to GX's Spark execution engine, a query's result persisted once
and measured there; only aggregates and the sampled problem rows come back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from crm_tags import PROJECT_DIR
from crm_tags.quality.connection import SPARK_INFORMATION_SCHEMA, SparkSqlConnection
from crm_tags.quality.distribution import forget_published_run, record_run
from crm_tags.quality.gate import Check, Finding, GateResult, SuiteSummary


def spark_label() -> str:
    """How reports name the Spark warehouse: spark:<warehouse folder> (profiles.yml)."""
    from crm_tags.spark_host import session_settings

    return f"spark:{session_settings()['spark.sql.warehouse.dir']}"


def register_information_schema(spark) -> None:
    """information_schema.tables and .columns (the few columns the gate reads) as temporary
    views of the session's catalog: Spark has none (crm_tags.quality.connection.for_engine)."""
    tables, columns = [], []
    for database in spark.catalog.listDatabases():
        for table in spark.catalog.listTables(database.name):
            if table.isTemporary:
                continue
            tables.append((database.name, table.name, table.tableType))
            if database.name.startswith("raw_"):  # the contract check reads the raw views' only
                columns += [(database.name, table.name, column.name, column.dataType)
                            for column in spark.catalog.listColumns(table.name, database.name)]
    spark.createDataFrame(tables, "table_schema string, table_name string, table_type string") \
        .createOrReplaceTempView(SPARK_INFORMATION_SCHEMA["information_schema.tables"])
    spark.createDataFrame(
        columns, "table_schema string, table_name string, column_name string, data_type string"
    ).createOrReplaceTempView(SPARK_INFORMATION_SCHEMA["information_schema.columns"])


def run_gate_on_spark(
    *,
    manifest: Path | None = None,
    runtime_dir: Path | None = None,
    policy: Path | None = None,
    checkpoints: list[str] | None = None,
    build_docs: bool = True,
    record_run_id: str | None = None,
) -> GateResult:
    """crm_tags.quality.gate.run_gate on the spark target, in the spark environment's interpreter
    (a process of its own); returns its GateResult. Nothing else may hold the metastore then.
    record_run_id: when the gate passes, record the tag distribution under this run id (the
    swing check's baseline for the next run, crm_tags.quality.distribution.record_run)."""
    from crm_tags.build import spark_python
    from crm_tags.quality.gate import DEFAULT_RUNTIME_DIR

    runtime_dir = Path(runtime_dir or DEFAULT_RUNTIME_DIR).resolve()
    runtime_dir.mkdir(parents=True, exist_ok=True)
    arguments = runtime_dir / ".spark_gate.args.json"
    answer = runtime_dir / ".spark_gate.result.json"
    answer.unlink(missing_ok=True)
    arguments.write_text(json.dumps({
        "manifest": str(Path(manifest).resolve()) if manifest else None,
        "runtime_dir": str(runtime_dir), "policy": str(policy) if policy else None,
        "checkpoints": checkpoints, "build_docs": build_docs, "record_run_id": record_run_id}))
    process = subprocess.run(
        [str(spark_python()), "-m", "crm_tags.quality.spark_gate", str(arguments), str(answer)],
        capture_output=True, text=True, check=False, cwd=PROJECT_DIR,
        env={**os.environ, "CRM_TARGET": "spark"})
    if process.returncode != 0 or not answer.exists():
        # no verdict: the gate blocks, saying why (the end of the Spark process's output)
        result = GateResult(passed=False, warehouse=spark_label(), run_date=None, customers=0)
        detail = [line for line in (process.stderr or process.stdout).splitlines()
                  if line.strip() and "[Stage " not in line][-12:]  # not Spark's progress bars
        result.failures.append(Finding(
            "gate", "gate", "critical",
            "The gate's Spark process failed, so nothing was validated.",
            "\n    ".join(detail) or f"exit status {process.returncode}"))
        return result
    return result_from_json(json.loads(answer.read_text()))


def build_and_gate_spark(
    raw_dir: Path,
    warehouse: Path,
    as_of: dt.date | str | None = None,
    *,
    target_path: Path | None = None,
    runtime_dir: Path | None = None,
    policy: Path | None = None,
    quiet: bool = True,
    full_refresh: bool = False,
    select: str | None = None,
):  # -> crm_tags.quality.publish.PublishResult
    """`crm-tags build` on the spark target: dbt builds the Spark schemas in place, then the
    gate runs there; when it passes, the tag distribution is recorded (the next run's swing
    baseline). Nothing is published: Spark has no BI publish (docs/privacy.md), so `.published`
    is the gate's verdict. `warehouse` only places dbt's target folder. Raises DbtError when dbt
    fails."""
    import time

    from crm_tags.build import build
    from crm_tags.quality.publish import PublishResult

    target_path = Path(target_path or Path(warehouse).resolve().with_name(".spark.dbt_target"))
    started = time.monotonic()
    build(raw_dir, warehouse, as_of, select=select, target_path=target_path, quiet=quiet,
          full_refresh=full_refresh, unit_tests=False)
    gate_started = time.monotonic()
    now = dt.datetime.now(dt.UTC)
    run_id = f"{as_of or now.date()}_{now:%Y%m%dT%H%M%S%f}"  # the build's run date, as on DuckDB
    gate = run_gate_on_spark(manifest=target_path / "manifest.json", runtime_dir=runtime_dir,
                             policy=policy, record_run_id=run_id)
    return PublishResult(gate.passed, gate.warehouse, None, gate, in_place=True,
                         build_seconds=gate_started - started,
                         gate_seconds=time.monotonic() - gate_started, run_id=run_id)


def result_to_json(result: GateResult) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(result), default=str))


def result_from_json(data: dict) -> GateResult:
    def path(value: str | None) -> Path | None:
        return Path(value) if value else None

    return GateResult(
        passed=data["passed"], warehouse=data["warehouse"],
        run_date=dt.date.fromisoformat(data["run_date"]) if data["run_date"] else None,
        customers=data["customers"],
        suites=[SuiteSummary(**s) for s in data["suites"]],
        failures=[Finding(**f) for f in data["failures"]],
        warnings=[Finding(**f) for f in data["warnings"]],
        notes=data["notes"], checks=[Check(**c) for c in data["checks"]],
        data_docs=path(data["data_docs"]), data_docs_run=path(data["data_docs_run"]),
        started_at=dt.datetime.fromisoformat(data["started_at"]), seconds=data["seconds"])


def gate_in_session(spark, arguments: dict) -> GateResult:
    """One gate run in `spark`, a session on the build's warehouse and metastore: `arguments`
    as run_gate_on_spark writes them (manifest, runtime_dir, policy, checkpoints, build_docs,
    record_run_id). Several runs may share one session (one JVM start)."""
    from crm_tags.quality.gate import run_gate

    spark.sparkContext.setLogLevel("ERROR")
    register_information_schema(spark)
    if arguments.get("record_run_id"):  # built in place: not recorded yet
        forget_published_run(SparkSqlConnection(spark))
    result = run_gate(
        manifest=Path(arguments["manifest"]) if arguments.get("manifest") else None,
        runtime_dir=Path(arguments["runtime_dir"]),
        policy=Path(arguments["policy"]) if arguments.get("policy") else None,
        checkpoints=arguments.get("checkpoints"), build_docs=arguments.get("build_docs", True),
        engine="spark", spark=spark)
    if result.passed and arguments.get("record_run_id"):
        record_run(SparkSqlConnection(spark), arguments["record_run_id"],
                   dt.datetime.now(dt.UTC).replace(tzinfo=None))
    return result


def main(argv: list[str]) -> int:
    """`ARGS.json RESULT.json`: run the gate in this process's Spark session (the spark
    environment), write its GateResult to RESULT.json."""
    from crm_tags.spark_host import spark_session

    arguments = json.loads(Path(argv[0]).read_text())
    spark = spark_session()
    try:
        result = gate_in_session(spark, arguments)
    finally:
        spark.stop()
    Path(argv[1]).write_text(json.dumps(result_to_json(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
