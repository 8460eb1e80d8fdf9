"""The Dagster code location (`crm-tags dagster-dev` runs `dagster dev -m` on this module)."""

from __future__ import annotations

from dagster import Definitions

from orchestration import project
from orchestration.assets import (
    CADENCES,
    CANDIDATE_KEY,
    PUBLISHED_KEY,
    asset_key_of,
    candidate_warehouse,
    crm_dbt,
    landing_zone,
    published_warehouse,
)
from orchestration.assets import GRAPH as DBT_GRAPH
from orchestration.freshness import build_tag_freshness_checks
from orchestration.quality_checks import QualityGate, build_quality_gate_checks
from orchestration.resources import Warehouse
from orchestration.schedules import cadence_jobs, cadence_schedules, full_build_job
from orchestration.segments import MEMBERS_MODEL, SEGMENTS, build_segment_definitions
from orchestration.tag_health import HEALTH_MODEL, build_tag_health_checks
from orchestration.tag_profile import quoted_relation
from orchestration.warehouse_state import build_warehouse_state_sensor

cadence_by_tag_key = {
    asset_key_of(name): CADENCES.tag_of_model(name).cadence  # type: ignore[union-attr]
    for name in CADENCES.graph.tag_models
}
tag_freshness = build_tag_freshness_checks(cadence_by_tag_key)
quality_gate = build_quality_gate_checks(CANDIDATE_KEY)
# tag health and the segments are not built on Spark yet (dbt_project.yml): no checks, no assets
tag_health_checks = (
    [build_tag_health_checks(
        asset_key_of(HEALTH_MODEL), quoted_relation(DBT_GRAPH.nodes["tag_health_flags"])
    )]
    if HEALTH_MODEL in DBT_GRAPH.nodes
    else []
)
warehouse_state = build_warehouse_state_sensor(
    CADENCES, asset_key_of, PUBLISHED_KEY, cadence_by_tag_key
)


def build_definitions(
    warehouse: Warehouse | None = None,
    gate: QualityGate | None = None,
    segments: Definitions | None = None,
) -> Definitions:
    """The code location; tests pass their own warehouse paths, gate and segments."""
    tags = Definitions(
        assets=[landing_zone, crm_dbt, candidate_warehouse, published_warehouse],
        asset_checks=[quality_gate, tag_freshness, *tag_health_checks],
        jobs=[*cadence_jobs.values(), full_build_job],
        schedules=cadence_schedules,
        sensors=[warehouse_state],
        resources={
            "dbt": project.dbt_cli_resource(),
            "warehouse": warehouse or Warehouse(),
            "gate": gate or QualityGate(),
        },
    )
    # one asset per segment of the segments file
    if segments is None and MEMBERS_MODEL not in DBT_GRAPH.nodes:
        segments = Definitions()
    return Definitions.merge(tags, segments or build_segment_definitions(SEGMENTS))


defs = build_definitions()
