"""One job and one schedule per cadence, from the catalog; plus `full_build` for first runs.

A cadence's job materialises the tag models whose catalog `refresh_frequency` is that cadence,
everything they need upstream, the BI marts (and what they need besides tags), and publishes.
Tags of other cadences are not rebuilt: the marts union their last tables. The jobs are asset
jobs over an `AssetSelection`, so every check on the selected assets runs with them: dbt tests,
the quality gate and the tag freshness checks.
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    define_asset_job,
    schedule,
)

from crm_tags.catalog import CADENCES as CADENCE_NAMES
from orchestration.assets import CADENCES, CANDIDATE_KEY, PUBLISHED_KEY, asset_key_of, crm_dbt
from orchestration.resources import TIMEZONE, zone

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

# In TIMEZONE; staggered so a Monday or a 1st of the month queues its runs one after the other.
CRON = {
    "daily": "0 2 * * *",
    "weekly": "0 3 * * 1",
    "monthly": "0 4 1 * *",
}
CADENCE_TAG = "crm_tags/cadence"


def cadence_keys(cadence: str) -> set[AssetKey]:
    """Asset keys of the dbt models a cadence's job builds (derived from the catalog)."""
    return {asset_key_of(name) for name in CADENCES.models(cadence)}


def _job(
    name: str, keys: Iterable[AssetKey], description: str, tags: dict[str, str]
) -> "UnresolvedAssetJobDefinition":
    return define_asset_job(
        name=name,
        selection=AssetSelection.assets(*keys, CANDIDATE_KEY, PUBLISHED_KEY),
        description=description,
        tags=tags,
    )


def _describe(cadence: str) -> str:
    own = sorted(m.removeprefix("tag_") for m in CADENCES.tag_models(cadence))
    extra = sorted(
        m.removeprefix("tag_")
        for m in CADENCES.refreshed_tags(cadence) - CADENCES.tag_models(cadence)
    )
    text = f"{cadence.capitalize()} tags: {', '.join(own) or 'none'}"
    if extra:
        text += f" (and {', '.join(extra)}, which they need)"
    return text + "; then the marts, the quality gate and publish."


cadence_jobs: "dict[str, UnresolvedAssetJobDefinition]" = {
    cadence: _job(
        f"{cadence}_tags", cadence_keys(cadence), _describe(cadence), {CADENCE_TAG: cadence}
    )
    for cadence in CADENCE_NAMES
}

full_build_job = _job(
    "full_build",
    list(crm_dbt.keys),
    "Every model, seed and test, then publish: the first run on a new warehouse, or after a "
    "change that touches every tag.",
    {CADENCE_TAG: "full"},
)


def _cadence_schedule(cadence: str) -> ScheduleDefinition:
    job = cadence_jobs[cadence]

    @schedule(
        name=f"{cadence}_tags_schedule",
        job=job,
        cron_schedule=CRON[cadence],
        execution_timezone=TIMEZONE,
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"{_describe(cadence)} The tick's date is the run date (dbt as_of_date).",
    )
    def _schedule(context: ScheduleEvaluationContext) -> RunRequest:
        as_of = context.scheduled_execution_time.astimezone(zone()).date().isoformat()
        return RunRequest(run_key=f"{cadence}-{as_of}", partition_key=as_of)

    return _schedule


cadence_schedules = [_cadence_schedule(cadence) for cadence in CADENCE_NAMES]
