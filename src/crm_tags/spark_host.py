"""The spark target on the crm-tags host: its local Spark session and the host-run Python models.

profiles.yml's `spark` output (method session) is the one home of the Spark settings: the
session here is built from its server_side_parameters, rendered with the same environment
variables, so the host reads and writes the tables dbt builds (the same warehouse folder and
Derby metastore).

A Derby metastore admits one process at a time, and dbt (a subprocess) opens it on every
run: so each host-run Python model runs in a short-lived process of its own
(`python -m crm_tags.spark_host MANIFEST NAME`), between the dbt waves of
crm_tags.python_on_host.build_in_waves.
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
    """The connection python_on_host's read_relation/write_table use on Spark."""

    def __init__(self, spark):
        self.spark = spark

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
        self.spark.stop()


def _spark_schema(schema: pa.Schema):
    from pyspark.sql.pandas.types import from_arrow_schema

    return from_arrow_schema(schema)


def run_model_in_subprocess(manifest_path: Path, node: dict) -> None:
    """One host-run Python model in a process of its own (see the module docstring)."""
    from crm_tags.build import spark_python

    result = subprocess.run([str(spark_python()), "-m", "crm_tags.spark_host", str(manifest_path), node["name"]],
                            capture_output=True, text=True, check=False, cwd=PROJECT_DIR)
    sys.stderr.write(result.stderr[-2000:] if result.returncode else "")
    if result.returncode != 0:
        raise RuntimeError(f"python_on_host (spark): model {node['name']} failed:\n{result.stderr[-4000:]}")


def export(relations: list[str], folder: Path) -> None:
    """Each schema.name (a table or a view) as folder/<schema.name>.parquet, read by Spark."""
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    conn = SparkConnection(spark_session())
    try:
        for relation in relations:
            schema, name = relation.split(".")
            pq.write_table(conn.read_relation(schema, name), folder / f"{relation}.parquet")
    finally:
        conn.close()


def main(argv: list[str]) -> int:
    """`MANIFEST NAME`: run one host model; `--export FOLDER RELATION...`: export relations."""
    from crm_tags.python_on_host import python_models, run_model

    if argv[0] == "--export":
        export(argv[2:], Path(argv[1]))
        return 0
    manifest_path, name = Path(argv[0]), argv[1]
    manifest = json.loads(manifest_path.read_text())
    node = next(n for n in python_models(manifest) if n["name"] == name)
    conn = SparkConnection(spark_session())
    try:
        run_model(conn, manifest, node)
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
