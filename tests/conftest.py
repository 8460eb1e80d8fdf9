"""Shared fixtures: hand-made landing zones written with the contract schema, and dbt builds."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest

from crm_tags import PROJECT_DIR
from crm_tags.build import build
from crm_tags.contract import write_delivery


class LandingZone:
    """Collects rows per raw table and writes them as delivery files (one file per call)."""

    def __init__(self, root: Path):
        self.root = root
        self._files = 0

    def deliver(self, table: str, rows: list[dict], name: str | None = None) -> Path:
        self._files += 1
        return write_delivery(self.root, table, rows, name or f"delivery_{self._files:03d}.parquet")


def build_warehouse(raw_dir: Path, warehouse: Path, as_of: str, tmp_path: Path) -> Path:
    """dbt build into `warehouse`; a per-test target dir keeps parallel runs apart."""
    build(raw_dir, warehouse, as_of, target_path=tmp_path / "dbt_target", quiet=True)
    return warehouse


def copy_project(project: Path) -> Path:
    """A copy of the dbt project (models, macros, seeds, data tests) to change in a test; build
    it with `build(..., project_dir=project)`."""
    for part in ["models", "macros", "seeds", "tests/dbt"]:
        shutil.copytree(PROJECT_DIR / part, project / part)
    shutil.copy(PROJECT_DIR / "dbt_project.yml", project)
    return project


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).fetchall()


def ts(as_of: str, days_ago: int, hour: int = 10) -> dt.datetime:
    """A timestamp `days_ago` days before the run date (negative = after it)."""
    return dt.datetime.fromisoformat(as_of) - dt.timedelta(days=days_ago) + dt.timedelta(hours=hour)


@pytest.fixture
def landing(tmp_path: Path) -> LandingZone:
    return LandingZone(tmp_path / "raw")
