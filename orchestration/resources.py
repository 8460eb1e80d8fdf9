"""The warehouse files a run reads and writes, and the run-date partitions.

Write-audit-publish on files, as crm_tags.quality.publish does for `crm-tags validate
--build-and-publish`: a run copies the *published* warehouse (what BI tools read) to the
*candidate* next to it, dbt builds into the candidate, the quality gate validates it, and only
then is it renamed over the published file. A run whose blocking checks fail leaves the
published file untouched (the candidate stays for inspection until the next run).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
from dagster import ConfigurableResource, DailyPartitionsDefinition

from orchestration import project

TIMEZONE = os.environ.get("CRM_TIMEZONE", "Asia/Shanghai")
PARTITIONS_START = os.environ.get("CRM_PARTITIONS_START", "2024-01-01")

# One partition per run date (dbt var as_of_date). end_offset=1: today's date is a partition
# as soon as the day starts, so a schedule tick runs its own date (the `crm-tags build` default).
run_dates = DailyPartitionsDefinition(start_date=PARTITIONS_START, timezone=TIMEZONE, end_offset=1)

# Every op that opens the warehouse for writing (or reads the candidate between build and
# publish) is in this pool; DAGSTER_HOME's dagster.yaml limits it to one run at a time
# (DuckDB allows a single writing process per file).
WAREHOUSE_POOL = "crm_warehouse"


def today() -> dt.date:
    """The current run date in the partitions' timezone (patched in tests)."""
    return dt.datetime.now(dt.UTC).astimezone(zone()).date()


def zone() -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(TIMEZONE)


class Warehouse(ConfigurableResource):
    """Paths of the landing zone and of the candidate and published warehouse files."""

    raw_dir: str = str(project.RAW_DIR)
    published_path: str = str(project.WAREHOUSE_PATH)
    candidate_path: str = str(project.CANDIDATE_WAREHOUSE_PATH)

    @property
    def candidate(self) -> Path:
        return Path(self.candidate_path)

    @property
    def published(self) -> Path:
        return Path(self.published_path)

    def dbt_env(self) -> dict[str, str]:
        """What profiles.yml and the landing-zone macro read: dbt writes the candidate."""
        return {
            "CRM_RAW_DIR": self.raw_dir,
            "CRM_WAREHOUSE_PATH": self.candidate_path,
            **project.DBT_ENV,
        }

    def prepare_candidate(self) -> str:
        """Every run starts from a copy of the published warehouse: the tags of other cadences
        (not rebuilt by this run) keep their last *published* tables, and a rejected candidate is
        never built upon. Before anything is published, an existing candidate is reused."""
        self.candidate.parent.mkdir(parents=True, exist_ok=True)
        if self.published.exists():
            from crm_tags.quality.publish import copy_warehouse  # lazy: keeps GX out of load time

            copy_warehouse(self.published, self.candidate)
            return f"fresh copy of {self.published}"
        if self.candidate.exists():
            return "existing candidate (nothing published yet)"
        return "new, empty"

    def existing_relations(self) -> set[tuple[str, str]]:
        """(schema, table) of every table and view in the candidate."""
        if not self.candidate.exists():
            return set()
        with duckdb.connect(str(self.candidate), read_only=True) as con:
            rows = con.sql(
                "select table_schema, table_name from information_schema.tables"
            ).fetchall()
        return {(schema, name) for schema, name in rows}

    def publish(self) -> Path:
        """Rename the audited candidate over the published file (crm_tags.quality.publish).

        Like prepare_candidate's copy, it only takes a read lock on the published file: BI
        connections holding it never make the run fail; a process writing it does, named in
        the error (crm_tags.warehouse_lock.WarehouseLocked)."""
        from crm_tags.quality.publish import publish

        publish(self.candidate, self.published)
        return self.published


