"""Where things are: the dbt project, its manifest, the landing zone and the warehouse files.

Everything is read from the environment once, at import, so `dagster dev`, the run workers it
spawns and the tests all agree:

| variable | default | what |
|---|---|---|
| `CRM_RAW_DIR` | `data/raw` | the Parquet landing zone |
| `CRM_WAREHOUSE_PATH` | `data/warehouse.duckdb` | the *published* warehouse BI tools read |
| `CRM_CANDIDATE_WAREHOUSE_PATH` | `.<name>.candidate.duckdb` beside it | what a run builds |
| `CRM_DAGSTER_DBT_TARGET` | `target/dagster` | dbt manifest and per-run artifacts of Dagster |
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from crm_tags import PROJECT_DIR

logger = logging.getLogger(__name__)

RAW_DIR = Path(os.environ.get("CRM_RAW_DIR", PROJECT_DIR / "data" / "raw")).resolve()
WAREHOUSE_PATH = Path(
    os.environ.get("CRM_WAREHOUSE_PATH", PROJECT_DIR / "data" / "warehouse.duckdb")
).resolve()
# Same name as crm_tags.quality.publish.candidate_path: one candidate per warehouse.
CANDIDATE_WAREHOUSE_PATH = Path(
    os.environ.get(
        "CRM_CANDIDATE_WAREHOUSE_PATH",
        WAREHOUSE_PATH.with_name(f".{WAREHOUSE_PATH.stem}.candidate{WAREHOUSE_PATH.suffix}"),
    )
).resolve()
DBT_TARGET_DIR = Path(
    os.environ.get("CRM_DAGSTER_DBT_TARGET", PROJECT_DIR / "target" / "dagster")
).resolve()


def _dbt_executable() -> str:
    """The dbt that belongs to this interpreter (a venv's bin/ is often not on PATH: cron,
    IDEs); on the spark target the spark environment's, which has dbt-spark (it parses the
    project; runs build through crm_tags.build like `crm-tags build`)."""
    if os.environ.get("CRM_TARGET") == "spark":
        from crm_tags.build import spark_python

        return str(spark_python().with_name("dbt"))
    return str(Path(sys.executable).with_name("dbt"))


DBT_EXECUTABLE = _dbt_executable()

# dagster-dbt seeds each invocation with partial_parse.msgpack from $DBT_TARGET_PATH: ours, not
# the default target/ that plain `dbt` commands use.
DBT_ENV = {"DBT_TARGET_PATH": str(DBT_TARGET_DIR)}

# Files whose change can change the manifest.
_DBT_INPUTS = ["models", "macros", "seeds", "snapshots", "tests/dbt", "analyses"]
_DBT_INPUT_FILES = ["dbt_project.yml", "profiles.yml", "packages.yml", "dependencies.yml"]

dbt_project = DbtProject(
    project_dir=PROJECT_DIR,
    profiles_dir=PROJECT_DIR,
    target_path=DBT_TARGET_DIR,
)


def _newest_input_mtime() -> float:
    newest = 0.0
    for name in _DBT_INPUT_FILES:
        path = PROJECT_DIR / name
        if path.exists():
            newest = max(newest, path.stat().st_mtime)
    for folder in _DBT_INPUTS:
        for path in (PROJECT_DIR / folder).rglob("*"):
            if path.is_file():
                newest = max(newest, path.stat().st_mtime)
    return newest


def _parsed_for(manifest: Path) -> str | None:
    """The adapter a manifest was parsed for (its metadata, at the top of the file)."""
    with manifest.open(encoding="utf-8") as file:
        head = file.read(4096)
    found = re.search(r'"adapter_type":\s*"(\w+)"', head)
    return found.group(1) if found else None


def manifest_is_stale() -> bool:
    """Missing, older than the project, or parsed for another target's adapter ($CRM_TARGET
    changed: Spark's manifest lacks what is disabled there, dbt_project.yml)."""
    manifest = dbt_project.manifest_path
    if not manifest.exists() or manifest.stat().st_mtime < _newest_input_mtime():
        return True
    return _parsed_for(manifest) not in (None, os.environ.get("CRM_TARGET") or "duckdb")


def prepare_manifest(force: bool = False) -> Path:
    """`dbt parse` into DBT_TARGET_DIR when the manifest is missing or older than the project.

    Called at import of the code location, so `dagster definitions validate`, CI and the run
    workers never depend on `prepare_if_dev()` (which acts only under `dagster dev`).
    """
    if force or manifest_is_stale():
        logger.info("dbt parse -> %s", dbt_project.manifest_path)
        DBT_TARGET_DIR.mkdir(parents=True, exist_ok=True)
        dbt_env = {
            # parse renders profiles.yml: give it the same paths the runs will use.
            "CRM_RAW_DIR": str(RAW_DIR),
            "CRM_WAREHOUSE_PATH": str(CANDIDATE_WAREHOUSE_PATH),
            **DBT_ENV,
        }
        if os.environ.get("CRM_TARGET") == "spark":
            # dagster-dbt loads the adapter in this process, and dbt-spark lives in the spark
            # environment only: its dbt parses, as for `crm-tags build` (crm_tags.build.run_dbt)
            from crm_tags.build import run_dbt

            run_dbt(["parse", "--quiet"], RAW_DIR, CANDIDATE_WAREHOUSE_PATH,
                    target_path=DBT_TARGET_DIR, quiet=True)
            return dbt_project.manifest_path
        with patched_environ(dbt_env):
            dbt_cli_resource().cli(["parse", "--quiet"], target_path=DBT_TARGET_DIR).wait()
    return dbt_project.manifest_path


def dbt_cli_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)


@contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for a block: dagster-dbt hands dbt a copy of os.environ, and
    profiles.yml and the landing-zone macro read their paths from it."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
