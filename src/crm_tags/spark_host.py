"""The spark target on the crm-tags host: its local Spark session and the host-run Python models.

profiles.yml's `spark` output (method session) is the one home of the Spark settings: the
session here is built from its server_side_parameters, rendered with the same environment
variables, so the host reads and writes the tables dbt builds (the same warehouse folder and
Derby metastore).

A build on the spark target runs in one process of the spark environment
(`python -m crm_tags.spark_host --build REQUEST`, started by crm_tags.build): dbt in-process
(dbtRunner) for the parse and every wave of crm_tags.python_on_host.build_in_waves, and the
host-run Python models on the same Spark session between the waves. So a build starts one JVM
and opens the Derby metastore once (a Derby metastore admits one process at a time), and dbt
parses the project once (the waves reuse the parsed manifest). The process stops its session
when the build ends: the metastore is free for the next process (an export, the next build).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import yaml

from crm_tags import PROJECT_DIR


def session_settings(project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """The spark output's server_side_parameters, with env_var() rendered as dbt does."""
    import jinja2

    profile = yaml.safe_load((Path(project_dir) / "profiles.yml").read_text())
    output = profile["crm_tags"]["outputs"]["spark"]

    def env_var(name: str, default: str | None = None) -> str:
        value = os.environ.get(name, default)
        if value is None:
            raise RuntimeError(f"profiles.yml (spark): environment variable {name} is not set")
        return value

    return {key: jinja2.Template(str(value)).render(env_var=env_var)
            for key, value in (output.get("server_side_parameters") or {}).items()}


def spark_session(project_dir: Path = PROJECT_DIR):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("crm-tags-host")
    for key, value in session_settings(project_dir).items():
        builder = builder.config(key, value)
    return builder.enableHiveSupport().getOrCreate()


class SparkConnection:
    """The connection python_on_host's read_relation/write_table use on Spark. close() stops
    the session unless keep_session (a caller that goes on using it in the same process)."""

    def __init__(self, spark, keep_session: bool = False):
        self.spark = spark
        self.keep_session = keep_session

    def read_relation(self, schema: str, name: str) -> pa.Table:
        frame = self.spark.table(f"`{schema}`.`{name}`")
        table = frame.toArrow()
        # Spark hands timestamps over as UTC instants (the session time zone is UTC): the
        # models work with naive timestamps, as on DuckDB
        fields = [pa.field(f.name, pa.timestamp("us")) if pa.types.is_timestamp(f.type) else f
                  for f in table.schema]
        return table.cast(pa.schema(fields))

    def write_table(self, name: str, table: pa.Table, unique_key=None) -> None:
        from crm_tags.python_on_host import SCHEMA

        keys = [unique_key] if isinstance(unique_key, str) else list(unique_key or [])
        relation = f"`{SCHEMA}`.`{name}`"
        self.spark.sql(f"create schema if not exists {SCHEMA}")
        if keys and self.spark.catalog.tableExists(f"{SCHEMA}.{name}"):
            # the rows of other keys are kept (plain Parquet: no delete; the table is small)
            import duckdb

            old = self.read_relation(SCHEMA, name)
            with duckdb.connect() as con:
                con.register("old", old)
                con.register("new", table)
                on = " and ".join(f'old."{k}" is not distinct from new."{k}"' for k in keys)
                kept = con.sql(f"select old.* from old where not exists (select 1 from new where {on})").arrow()
                if isinstance(kept, pa.RecordBatchReader):
                    kept = kept.read_all()
            table = pa.concat_tables([kept.cast(table.schema), table])
        frame = self.spark.createDataFrame(table) if table.num_rows else \
            self.spark.createDataFrame([], _spark_schema(table.schema))
        frame.write.mode("overwrite").format("parquet").saveAsTable(relation)

    def close(self) -> None:
        if not self.keep_session:
            self.spark.stop()


def _spark_schema(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


BUILD_FAILED = 3  # the exit status of a --build that failed with a DbtError


def build_in_subprocess(request: dict, env: dict[str, str], quiet: bool) -> str:
    """The build `request` (see build_in_this_process) in one process of the spark environment; returns dbt's
    output, raises DbtError with the reasons of a failed dbt run (a delivery error, a failing
    test) or the end of the process's error output."""
    import tempfile

    from crm_tags.build import DbtError, spark_python

    with tempfile.TemporaryDirectory(prefix="crm-spark-build-") as tmp:
        failure = Path(tmp) / "failure.txt"
        result = subprocess.run(
            [str(spark_python()), "-m", "crm_tags.spark_host", "--build",
             json.dumps({**request, "failure_file": str(failure)})],
            cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False)
        if not quiet:
            sys.stdout.write(result.stdout)
        if result.returncode == 0:
            return result.stdout
        if result.returncode == BUILD_FAILED and failure.exists():
            raise DbtError(failure.read_text())
    raise DbtError(f"the spark build failed (status {result.returncode}):\n{result.stderr[-4000:]}")


def build_in_this_process(request: dict, keep_session: bool = False) -> str:
    """The spark build, here: {"select": a dbt selection or null, "flags": the build's own
    flags, "project_dir": another copy of the project or null, "target_dir": dbt's target
    folder}, with dbt's environment (crm_tags.build.dbt_env) in os.environ. dbt runs in this
    process; a failed dbt command raises DbtError. The Spark session is stopped at the end
    unless keep_session (a caller that goes on reading the build in this process)."""
    from dbt.cli.main import dbtRunner

    from crm_tags.build import DbtError, dbt_failure_reasons
    from crm_tags.python_on_host import build_in_waves

    project = ["--project-dir", request["project_dir"]] if request.get("project_dir") else []
    parsed: dict = {}

    def dbt(args: list[str]) -> str:
        lines: list[str] = []

        def collect(event) -> None:
            if event.info.level in ("info", "warn", "error") and event.info.msg:
                lines.append(event.info.msg)

        def invoke(command: list[str]):
            result = dbtRunner(manifest=parsed.get("manifest"), callbacks=[collect]).invoke(command + project)
            if not result.success:
                output = "\n".join(lines) + "\n"
                reasons = dbt_failure_reasons(output)
                if result.exception is not None and str(result.exception) not in output:
                    reasons.append(str(result.exception))
                raise DbtError(f"dbt {' '.join(command)} failed:\n" + "\n".join(reasons[-40:] or [output[-4000:]]))
            return result

        # every dbt command of the build reuses the manifest of one parse (dbt's partial
        # parsing would re-read the project per wave)
        if "manifest" not in parsed:
            parsed["manifest"] = invoke(["parse"]).result
        if args[0] != "parse":
            invoke(args)
        return "\n".join(lines) + "\n"

    # the host-run models use dbt's own Spark session (the same process: getOrCreate); their
    # connection stops it when the waves are done
    return build_in_waves(
        dbt, lambda: SparkConnection(spark_session(Path(request.get("project_dir") or PROJECT_DIR)), keep_session),
        lambda: Path(request["target_dir"]) / "manifest.json", request["flags"],
        select=request.get("select"))


def export(relations: list[str], folder: Path, spark=None) -> None:
    """Each schema.name (a table or a view) as folder/<schema.name>.parquet, read by Spark (in
    `spark`, a session the caller keeps, or in one of its own, stopped at the end)."""
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    conn = SparkConnection(spark or spark_session())
    try:
        for relation in relations:
            schema, name = relation.split(".")
            pq.write_table(conn.read_relation(schema, name), folder / f"{relation}.parquet")
    finally:
        if spark is None:
            conn.close()


def main(argv: list[str]) -> int:
    """`--build REQUEST`: a spark build (crm_tags.build); `--export FOLDER RELATION...`: export
    relations."""
    if argv[0] == "--export":
        export(argv[2:], Path(argv[1]))
        return 0
    if argv[0] == "--build":
        from crm_tags.build import DbtError

        request = json.loads(argv[1])
        try:
            build_in_this_process(request)
        except DbtError as error:
            Path(request["failure_file"]).write_text(str(error))
            return BUILD_FAILED
        return 0
    raise SystemExit("usage: python -m crm_tags.spark_host --build REQUEST | --export FOLDER RELATION...")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
