"""What the published warehouse already holds, told to Dagster; and the freshness it implies.

A warehouse built outside Dagster (`make demo`, `crm-tags build`, `validate
--build-and-publish`), or before this DAGSTER_HOME existed, holds tag tables with their run
dates that Dagster has no record of: without this, a first start shows every asset "Never
materialized", every `fresh_for_cadence` check failing and "upstream data missing" warnings.

`warehouse_state_sensor` (running by default, every 30 s, launches no runs) reads the published
file read-only and reports, as *runless* asset materialisations (Dagster's way to record what
an external process built: `SensorResult(asset_events=...)`), the run date each table holds, as
its partition, with the metadata a run would record and a `recorded_from` entry saying it was
read from the warehouse. Only for assets whose latest record in the instance is older or
missing: a build Dagster ran itself is never overwritten, and nothing is recorded for a table
the file lacks.

Run dates come from the warehouse itself:
- a tag model: max(`as_of_date`) of its table (every tag model stores its run date); an empty
  table takes the date of the other tags of its cadence, which are built by the same job;
- the run: `audit.published_run` (written when the gate publishes), else the landing-zone
  audit's `as_of_date`;
- any other model or seed: the latest run date of the cadences whose job rebuilds it
  (`Cadences.models`), which is the run's date for the marts and the audit, and the weekly
  tags' date for a model only weekly tags read. A full build (`make demo`) gives one date.

The same tick then re-evaluates the `fresh_for_cadence` check of every tag whose answer
changed, or whose latest materialisation the stored result does not cover, as a runless check
evaluation aimed at that materialisation (a tag recorded in this tick is evaluated at the next
one, once its record exists). So a first start goes from no record to true records to true
freshness within a minute, and a tag nobody refreshes turns red without any run.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetCheckSeverity,
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    MetadataValue,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from crm_tags.catalog import CADENCES as CADENCE_NAMES
from crm_tags.catalog import Cadences
from orchestration import freshness
from orchestration.quality_checks import PUBLISHED_RUN_TABLE  # written when the gate publishes
from orchestration.resources import Warehouse, run_dates
from orchestration.tag_profile import population_relations, quoted_relation, tag_profile

SENSOR_NAME = "warehouse_state_sensor"
RECORDED_FROM = (
    "read from the published warehouse (no Dagster run built this record: the file already "
    "held this table when Dagster found no newer record of it)"
)
RECONCILIATION_TABLE = "audit.reconciliation"


@dataclass(frozen=True)
class NodeState:
    """A table of the published warehouse and the run date it holds."""

    name: str  # dbt node name
    run_date: dt.date
    run_date_from: str  # where the date was read (or how it was inferred)


@dataclass
class WarehouseState:
    path: Path
    run_id: str | None = None
    run_date: dt.date | None = None
    published_at: dt.datetime | None = None
    nodes: dict[str, NodeState] = field(default_factory=dict)


MISSING = "missing"


def fingerprint(path: Path) -> str:
    """Changes whenever the file is replaced (publish renames a new file over it) or written;
    the sensor's cursor, so it reads the file only when it changed."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return MISSING
    modified = dt.datetime.fromtimestamp(stat.st_mtime_ns / 1e9, dt.UTC)
    return (
        f"{path.name} modified {modified:%Y-%m-%dT%H:%M:%S.%fZ}, "
        f"{stat.st_size} bytes, inode {stat.st_ino}"
    )


def _relation(node: Mapping[str, Any]) -> tuple[str, str]:
    return node["schema"], node.get("alias") or node["name"]


def read_state(con: duckdb.DuckDBPyConnection, path: Path, cadences: Cadences) -> WarehouseState:
    """The run date of every dbt model, seed and snapshot the warehouse holds."""
    graph = cadences.graph
    existing = {
        (schema, name)
        for schema, name in con.execute(
            "select table_schema, table_name from information_schema.tables"
        ).fetchall()
    }
    state = WarehouseState(path=path)
    if tuple(PUBLISHED_RUN_TABLE.split(".")) in existing:
        row = con.execute(
            f"select run_id, as_of_date, published_at from {PUBLISHED_RUN_TABLE} "
            "order by published_at desc limit 1"
        ).fetchone()
        if row:
            state.run_id, state.run_date, state.published_at = row
    if state.run_date is None and tuple(RECONCILIATION_TABLE.split(".")) in existing:
        query = f"select max(as_of_date) from {RECONCILIATION_TABLE}"
        state.run_date = con.execute(query).fetchone()[0]
    run_date_from = PUBLISHED_RUN_TABLE if state.run_id else f"{RECONCILIATION_TABLE}.as_of_date"

    tag_dates: dict[str, dt.date | None] = {}
    for name in sorted(graph.tag_models):
        node = graph.nodes[name]
        if _relation(node) in existing:
            query = f"select max(as_of_date) from {quoted_relation(node)}"
            tag_dates[name] = con.execute(query).fetchone()[0]
    # the last run of each cadence: the newest run date among its tags' tables
    last_run: dict[str, dt.date] = {}
    for cadence in CADENCE_NAMES:
        dates = [d for m in cadences.tag_models(cadence) if (d := tag_dates.get(m)) is not None]
        if dates:
            last_run[cadence] = max(dates)
    if state.run_date is None and last_run:
        state.run_date, run_date_from = max(last_run.values()), "the newest tag table"

    for name, date in tag_dates.items():
        schema, table = _relation(graph.nodes[name])
        tag = cadences.tag_of_model(name)
        if date is not None:
            state.nodes[name] = NodeState(name, date, f"max(as_of_date) of {schema}.{table}")
        elif tag is not None and tag.cadence in last_run:
            state.nodes[name] = NodeState(
                name,
                last_run[tag.cadence],
                f"{schema}.{table} is empty: the date of the other {tag.cadence} tags, "
                "built by the same job",
            )
        elif state.run_date is not None:
            state.nodes[name] = NodeState(
                name, state.run_date, f"{schema}.{table} is empty: the run's date ({run_date_from})"
            )

    rebuilt_by = {cadence: cadences.models(cadence) for cadence in last_run}
    for name, node in graph.nodes.items():
        if name in graph.tag_models or _relation(node) not in existing:
            continue
        dates = {c: last_run[c] for c, models in rebuilt_by.items() if name in models}
        if dates:
            newest = max(dates.values())
            jobs = sorted(c for c, d in dates.items() if d == newest)
            how = f"rebuilt by every {'/'.join(jobs)} run: the date of its newest tag table"
            state.nodes[name] = NodeState(name, newest, how)
        elif state.run_date is not None:
            state.nodes[name] = NodeState(name, state.run_date, f"the run's date ({run_date_from})")
    return state


@dataclass
class Reporter:
    """Turns the warehouse state into the asset events the instance lacks."""

    cadences: Cadences
    asset_key_of: Any  # dbt node name -> AssetKey
    published_key: AssetKey
    skipped: list[str] = field(default_factory=list)

    def pending(
        self, instance: DagsterInstance, state: WarehouseState, con: duckdb.DuckDBPyConnection
    ) -> list[AssetMaterialization]:
        keys = {name: self.asset_key_of(name) for name in state.nodes}
        latest = latest_partitions(instance, [*keys.values(), self.published_key])
        events = []
        for name, node_state in sorted(state.nodes.items()):
            event = self._event(keys[name], node_state.run_date, latest, state)
            if event is None:
                continue
            metadata: dict[str, Any] = {}
            tag = self.cadences.tag_of_model(name)
            if tag is not None:  # what a run records first: the rows and value shares
                graph = self.cadences.graph
                relation = quoted_relation(graph.nodes[name])
                metadata.update(tag_profile(con, tag, relation, population_relations(graph)))
            metadata.update({**event, "run_date_from": node_state.run_date_from})
            events.append(
                AssetMaterialization(
                    asset_key=keys[name],
                    partition=node_state.run_date.isoformat(),
                    description=f"Recorded from the published warehouse {state.path}",
                    metadata=metadata,
                )
            )
        if state.run_id and state.run_date:
            event = self._event(self.published_key, state.run_date, latest, state)
            if event is not None:
                events.append(
                    AssetMaterialization(
                        asset_key=self.published_key,
                        partition=state.run_date.isoformat(),
                        description=f"Recorded from the published warehouse {state.path}",
                        metadata={
                            **event,
                            "as_of_date": state.run_date.isoformat(),
                            "size_mb": round(state.path.stat().st_size / 1e6, 1),
                        },
                    )
                )
        return events

    def _event(
        self,
        key: AssetKey,
        run_date: dt.date,
        latest: Mapping[AssetKey, str | None],
        state: WarehouseState,
    ) -> dict[str, Any] | None:
        """The common metadata of a record to make, or None when the instance knows better."""
        partition = run_date.isoformat()
        if not run_dates.has_partition_key(partition):
            self.skipped.append(f"{key.to_user_string()}: run date {partition} is not a partition")
            return None
        known = latest.get(key)
        if known is not None and known >= partition:
            return None
        metadata: dict[str, Any] = {
            "recorded_from": RECORDED_FROM,
            "warehouse": MetadataValue.path(str(state.path)),
        }
        if state.run_id:
            metadata["warehouse_run_id"] = state.run_id
        if state.published_at:
            metadata["published_at"] = MetadataValue.timestamp(
                state.published_at.replace(tzinfo=dt.UTC)
            )
        return metadata


def latest_partitions(
    instance: DagsterInstance, keys: Iterable[AssetKey]
) -> dict[AssetKey, str | None]:
    """The partition of each asset's latest materialisation ("" if it has none: unpartitioned)."""
    latest: dict[AssetKey, str | None] = {}
    for record in instance.get_asset_records(list(keys)):
        event = record.asset_entry.last_materialization
        if event is not None and event.dagster_event is not None:
            latest[record.asset_entry.asset_key] = event.dagster_event.partition or ""
    return latest


def freshness_evaluations(
    instance: DagsterInstance,
    cadence_by_key: Mapping[AssetKey, str],
    skip: set[AssetKey] = frozenset(),  # type: ignore[assignment]
) -> list[AssetCheckEvaluation]:
    """A `fresh_for_cadence` evaluation for each tag whose stored result is missing, says
    otherwise today, or was made before the tag's latest materialisation."""
    check_keys = [AssetCheckKey(key, freshness.CHECK_NAME) for key in sorted(
        cadence_by_key, key=lambda k: k.to_user_string()
    )]
    summaries = instance.event_log_storage.get_asset_check_summary_records(check_keys)
    materialized = {
        r.asset_entry.asset_key: r.asset_entry.last_materialization_record
        for r in instance.get_asset_records(list(cadence_by_key))
    }
    evaluations = []
    for check_key in check_keys:
        key = check_key.asset_key
        if key in skip:
            continue
        last = summaries[check_key].last_check_execution_record if check_key in summaries else None
        if last is not None and last.status == AssetCheckExecutionRecordStatus.PLANNED:
            run = instance.get_run_by_id(last.run_id)
            if run is not None and run.status not in _FINISHED:
                continue  # a run is evaluating it now
        passed, metadata = freshness.evaluate(instance, key, cadence_by_key[key])
        latest = materialized.get(key)
        stored = last.evaluation if last is not None else None
        target = stored.target_materialization_data if stored is not None else None
        covers_latest = latest is None or (
            target is not None and target.storage_id == latest.storage_id
        )
        if stored is not None and stored.passed == passed and covers_latest:
            continue
        evaluations.append(
            AssetCheckEvaluation(
                asset_key=key,
                check_name=check_key.name,
                passed=passed,
                severity=AssetCheckSeverity.ERROR,
                description=freshness.outcome(passed, metadata),
                metadata={**metadata, "evaluated_by": f"{SENSOR_NAME} (no run)"},
                target_materialization_data=(
                    AssetCheckEvaluationTargetMaterializationData(
                        storage_id=latest.storage_id,
                        run_id=latest.run_id,
                        timestamp=latest.timestamp,
                    )
                    if latest is not None
                    else None
                ),
            )
        )
    return evaluations


_FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def build_warehouse_state_sensor(
    cadences: Cadences,
    asset_key_of: Any,
    published_key: AssetKey,
    cadence_by_key: Mapping[AssetKey, str],
) -> SensorDefinition:
    @sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Records the run date each table of the published warehouse holds when Dagster has "
            "no newer record (a warehouse built by make demo or crm-tags build, or before this "
            "Dagster instance existed), then re-evaluates the fresh_for_cadence check of every "
            "tag whose answer changed. Launches no runs."
        ),
    )
    def warehouse_state_sensor(
        context: SensorEvaluationContext, warehouse: Warehouse
    ) -> SensorResult:
        reporter = Reporter(cadences, asset_key_of, published_key)
        path = warehouse.published
        current = fingerprint(path)
        events: list[AssetMaterialization] = []
        # read the file when it changed, or while a tag has no record at all
        known = latest_partitions(context.instance, cadence_by_key)
        unrecorded = any(key not in known for key in cadence_by_key)
        if current != MISSING and (current != context.cursor or unrecorded):
            try:
                with duckdb.connect(str(path), read_only=True) as con:
                    state = read_state(con, path, cadences)
                    events = reporter.pending(context.instance, state, con)
            except duckdb.Error as error:
                # retried at the next tick (the cursor stays)
                context.log.warning(f"could not read the published warehouse {path}: {error}")
                current = context.cursor or ""
        for note in reporter.skipped:
            context.log.warning(f"not recorded: {note}")
        recorded = {e.asset_key for e in events}
        checks = freshness_evaluations(context.instance, cadence_by_key, skip=recorded)
        failing = sorted(c.asset_key.path[-1] for c in checks if not c.passed)
        summary = (
            f"recorded {len(events)} table(s) from {path}; "
            f"{len(checks)} fresh_for_cadence check(s) evaluated"
            + (f", stale: {', '.join(failing)}" if failing else "")
        )
        # the tick launches no run: its "skip" message says what it recorded
        return SensorResult(
            asset_events=[*events, *checks], cursor=current, skip_reason=SkipReason(summary)
        )

    return warehouse_state_sensor

