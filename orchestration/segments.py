"""Segments in Dagster: one asset per segment of the segments file (docs/segments.md).

`segments/<code>` (group `segments`, partitioned by run date) is downstream of the tag models its
condition reads (`tags/tag_customer_grade`, ...), of the profile when it compares a metric, of the
segments it reads with in_segment() or that come before it in its priority list, of the dbt model
that computes every segment (`marts/segment_members`), and of `publish/warehouse`: an asset
stands for the segment as marketers see it, in the published warehouse. Every cadence's job
rebuilds the segment models after its tags (they are BI marts: crm_tags.catalog); the sensor
`segments_after_publish` then runs the `segments` job for the published run date, which records
each segment's member count, holdout, share and entries/exits as materialisation metadata
(read-only, from marts.segment_catalog). The UI thus shows a segment as stale when the tags it
reads have been refreshed and its own refresh has not happened yet.

The segments file is checked when the code location loads (crm_tags.segments.check): a bad
definition stops the load, and each run's process, with the message naming segment and position,
before dbt starts.
"""

from collections.abc import Iterator
from typing import Any

import duckdb
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    AssetSpec,
    DefaultSensorStatus,
    Definitions,
    EventLogEntry,
    Failure,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SkipReason,
    asset_sensor,
    define_asset_job,
    multi_asset,
)

from crm_tags.build import current_target
from crm_tags.catalog import TAG_MODEL_PREFIX
from crm_tags.segments.check import check_segments
from crm_tags.segments.definitions import Segment, SegmentFile
from crm_tags.segments.vocabulary import PROFILE_METRICS
from orchestration import project
from orchestration.assets import GRAPH, PUBLISHED_KEY, asset_key_of
from orchestration.engine_runs import on_engine
from orchestration.resources import Warehouse, run_dates

GROUP = "segments"
MEMBERS_MODEL = "segment_members"


def segment_key(code: str) -> AssetKey:
    return AssetKey([GROUP, code])


def segment_deps(file: SegmentFile, segment: Segment) -> list[AssetKey]:
    """The tag models a segment reads, the profile (for metrics), the segments it depends on,
    the model that computes it and the published warehouse it is read from."""
    names = segment.names_read
    tags = sorted(TAG_MODEL_PREFIX + n for n in names if TAG_MODEL_PREFIX + n in GRAPH.tag_models)
    keys = [asset_key_of(t) for t in tags]
    if names & set(PROFILE_METRICS):
        keys.append(asset_key_of("customer_profile"))
    keys += [segment_key(code) for code in file.dependencies(segment)]
    keys += [asset_key_of(MEMBERS_MODEL), PUBLISHED_KEY]
    return keys


def segment_specs(file: SegmentFile) -> list[AssetSpec]:
    return [
        AssetSpec(
            key=segment_key(s.code),
            deps=segment_deps(file, s),
            group_name=GROUP,
            kinds={"duckdb"},
            description=f"{s.label_en} ({s.label_zh}). {s.description}",
            metadata={
                "where": MetadataValue.text(s.where),
                "owner": s.owner,
                "holdout_percent": float(s.holdout_percent),
                "priority_list": s.priority_list or "",
                "source": f"{file.path.name} line {s.line}",
            },
            tags={"segment_owner": _tag_value(s.owner)},
        )
        for s in file.segments
    ]


def _tag_value(text: str) -> str:
    """Dagster tag values: letters, digits, - _ . only."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)[:63] or "unknown"


def build_segment_definitions(file: SegmentFile) -> Definitions:
    specs = segment_specs(file)
    if not specs:
        return Definitions()

    @multi_asset(specs=specs, can_subset=True, partitions_def=run_dates, name="published_segments")
    def published_segments_op(context: AssetExecutionContext,
                              warehouse: Warehouse) -> Iterator[Any]:
        """Each selected segment's members in the published warehouse as of the run date."""
        as_of = context.partition_key
        rows = published_segments(warehouse)
        missing = []
        selected = {key.path[-1] for key in context.selected_asset_keys}
        for code in [s.code for s in file.evaluation_order() if s.code in selected]:
            key = segment_key(code)
            row = rows.get(code)
            if row is None or str(row["as_of_date"]) != as_of:
                missing.append(code)
                continue
            yield MaterializeResult(asset_key=key, metadata={
                "member_count": row["member_count"],
                "holdout_count": row["holdout_count"],
                "share": MetadataValue.float(float(row["share"] or 0)),
                "entered": row["entered_count"],
                "exited": row["exited_count"],
                "as_of_date": str(row["as_of_date"]),
                "definition_hash": row["definition_hash"],
            })
        if missing:
            dates = sorted({str(r["as_of_date"]) for r in rows.values()}) or ["nothing"]
            raise Failure(
                f"The published warehouse {warehouse.published} holds no segment "
                f"{', '.join(missing)} as of {as_of} (it holds segments as of "
                f"{', '.join(dates)}): publish a run of that date first.",
                metadata={"missing": missing},
            )

    job = define_asset_job(
        "segments",
        selection=AssetSelection.groups(GROUP),
        description="Record each segment's members in the published warehouse (run by "
                    "segments_after_publish after every publish).",
    )

    @asset_sensor(asset_key=PUBLISHED_KEY, job=job, name="segments_after_publish",
                  default_status=DefaultSensorStatus.RUNNING)
    def segments_after_publish(context: SensorEvaluationContext,
                               asset_event: EventLogEntry) -> RunRequest | SkipReason | None:
        if on_engine():  # the segments are read from the published DuckDB file
            return SkipReason("the segment assets read the published DuckDB file: not on the "
                              f"{current_target()} target (marts.segment_catalog holds them)")
        event = asset_event.dagster_event
        if event is None or event.partition is None:
            return None
        return RunRequest(run_key=f"{asset_event.run_id}:{event.partition}",
                          partition_key=event.partition)

    return Definitions(assets=[published_segments_op], jobs=[job],
                       sensors=[segments_after_publish])


def published_segments(warehouse: Warehouse) -> dict[str, dict[str, Any]]:
    """marts.segment_catalog of the published warehouse, by segment code."""
    if not warehouse.published.exists():
        return {}
    with duckdb.connect(str(warehouse.published), read_only=True) as con:
        try:
            relation = con.sql("select * from marts.segment_catalog")
        except duckdb.CatalogException:
            return {}
        columns = relation.columns
        return {row[0]: dict(zip(columns, row, strict=True)) for row in relation.fetchall()}


# Checked at load: a bad file stops the code location (and every run's process) with its message.
SEGMENTS = check_segments(warehouse=project.WAREHOUSE_PATH)
