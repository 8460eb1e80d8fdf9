"""How fresh each tag must be, given its cadence.

Two views of the same promise, both derived from the catalog cadence:

- a `FreshnessPolicy` on every tag model (wall clock since its last materialization; the
  freshness daemon of `dagster dev` shows PASS / WARN / FAIL on the asset in the UI);
- a `fresh_for_cadence` asset check on every tag model: the run date (partition) the tag table
  was last built for must be at most one cadence period before today. It runs after each build,
  and `warehouse_state_sensor` (orchestration/warehouse_state.py) re-evaluates it so a tag that
  stops being refreshed turns red without any run touching it. A backfill of old dates
  overwrites the tables with old run dates, and this check says so.
"""

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    DagsterInstance,
    FreshnessPolicy,
    multi_asset_check,
)

from crm_tags.catalog import CADENCE_PERIOD
from orchestration import resources

# A run that is due but still going shows WARN for this long before the policy FAILs.
GRACE = dt.timedelta(hours=6)
CHECK_NAME = "fresh_for_cadence"


def freshness_policy(cadence: str) -> FreshnessPolicy:
    period = CADENCE_PERIOD[cadence]
    return FreshnessPolicy.time_window(
        fail_window=period + GRACE, warn_window=period + dt.timedelta(hours=1)
    )


def last_run_date(instance: DagsterInstance, key: AssetKey) -> dt.date | None:
    """The run date the table holds: the partition of the asset's latest materialization."""
    event = instance.get_latest_materialization_event(key)
    partition = event.dagster_event.partition if event and event.dagster_event else None
    return dt.date.fromisoformat(partition) if partition else None


def evaluate(instance: DagsterInstance, key: AssetKey, cadence: str) -> tuple[bool, dict[str, Any]]:
    """(passed, metadata) of the tag's fresh_for_cadence check as of today."""
    today = resources.today()
    allowed = CADENCE_PERIOD[cadence].days
    as_of = last_run_date(instance, key)
    metadata: dict[str, Any] = {
        "cadence": cadence,
        "allowed_age_days": allowed,
        "today": today.isoformat(),
    }
    if as_of is None:
        return False, {**metadata, "as_of_date": "never built"}
    age = (today - as_of).days
    return age <= allowed, {**metadata, "as_of_date": as_of.isoformat(), "age_days": age}


def outcome(passed: bool, metadata: dict[str, Any]) -> str:
    if passed:
        return f"fresh: built as of {metadata['as_of_date']}"
    return f"stale: built as of {metadata['as_of_date']}"


def build_tag_freshness_checks(cadence_by_key: Mapping[AssetKey, str]) -> AssetChecksDefinition:
    specs = [
        AssetCheckSpec(
            CHECK_NAME,
            asset=key,
            description=(
                f"{cadence} tag: its table must be built for a run date at most "
                f"{CADENCE_PERIOD[cadence].days} day(s) before today"
            ),
            metadata={"cadence": cadence},
        )
        for key, cadence in sorted(cadence_by_key.items(), key=lambda kv: kv[0].to_user_string())
    ]

    @multi_asset_check(specs=specs, can_subset=True, name="tag_freshness")
    def tag_freshness(context: AssetCheckExecutionContext) -> Iterator[AssetCheckResult]:
        for check_key in context.selected_asset_check_keys:
            passed, metadata = evaluate(
                context.instance, check_key.asset_key, cadence_by_key[check_key.asset_key]
            )
            yield AssetCheckResult(
                asset_key=check_key.asset_key,
                check_name=check_key.name,
                passed=passed,
                severity=AssetCheckSeverity.ERROR,
                metadata=metadata,
                description=outcome(passed, metadata),
            )

    return tag_freshness
