"""The tag-health figures and flags in Dagster (docs/tag-health.md): materialisation metadata of
marts.tag_health (the run's flag count, each flag with its reason, the coverage per tag) and one
asset check per flag on it. A flag is a warning for the stewards: a check is WARN and
non-blocking, never a failure, and the quality gate never reads it.
"""


from collections.abc import Iterator
from typing import Any

import duckdb
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    MetadataValue,
    multi_asset_check,
)

from orchestration.engine_runs import on_engine
from orchestration.resources import Warehouse

HEALTH_MODEL = "tag_health"


def health_metadata(con: duckdb.DuckDBPyConnection, relation: str = "marts.tag_health") -> dict[str, Any]:
    """Metadata of the latest run date in `relation` (marts.tag_health)."""
    run_date = con.execute(f"select max(as_of_date) from {relation}").fetchone()[0]
    if run_date is None:
        return {}
    rows = con.execute(
        f"select scope, coalesce(tag_code, dimension), flags, flag_reasons, coverage from {relation}"
        " where as_of_date = ? and scope in ('dimension', 'tag') order by scope, 2",
        [run_date]).fetchall()
    flagged = [(name, reasons) for _, name, flags, reasons, _ in rows if flags]
    flag_count = sum(reasons.count(";") + 1 for _, reasons in flagged)
    table = "\n".join(["| tag / dimension | flags (warnings) |", "| --- | --- |",
                       *(f"| {name} | {reasons} |" for name, reasons in flagged)])
    coverage = {name: round(float(cov), 4) for scope, name, _, _, cov in rows
                if scope == "tag" and cov is not None}
    return {
        "tag_health/run_date": str(run_date),
        "tag_health/flag_count": flag_count,
        "tag_health/flags": MetadataValue.md(table if flagged else "No flags."),
        "tag_health/coverage": MetadataValue.json(coverage),
    }


# --- the flags as asset checks ------------------------------------------------------------------

FLAGS = ("too_few", "too_broad", "redundant", "unstable", "stale", "uninformative", "too_many",
         "too_few_tags")
CHECK_PREFIX = "health_"


def flag_findings(con: duckdb.DuckDBPyConnection, relation: str = "marts.tag_health_flags"
                  ) -> tuple[str | None, dict[str, list[tuple[str, str]]]]:
    """(latest run date, {flag: [(tag or dimension, reason), ...]}) from marts.tag_health_flags."""
    run_date = con.execute(f"select max(as_of_date) from {relation}").fetchone()[0]
    findings: dict[str, list[tuple[str, str]]] = {flag: [] for flag in FLAGS}
    if run_date is None:
        return None, findings
    for flag, name, reason in con.execute(
            f"select flag, coalesce(tag_code, dimension), reason from {relation}"
            " where as_of_date = ? order by flag, 2", [run_date]).fetchall():
        findings.setdefault(flag, []).append((name, reason))
    return str(run_date), findings


def check_result(asset_key: AssetKey, flag: str, run_date: str | None,
                 found: list[tuple[str, str]]) -> AssetCheckResult:
    """One flag's check: passed when nothing raised it; otherwise a WARN (never blocking)."""
    metadata: dict[str, Any] = {"run_date": run_date or "no health rows", "flagged": len(found)}
    if found:
        metadata["findings"] = MetadataValue.md("\n".join(f"- {n}: {r}" for n, r in found))
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=CHECK_PREFIX + flag,
        passed=not found,
        severity=AssetCheckSeverity.WARN,
        description=f"{flag}: " + ", ".join(n for n, _ in found) if found else None,
        metadata=metadata,
    )


def build_tag_health_checks(health_key: AssetKey, relation: str) -> AssetChecksDefinition:
    """One non-blocking check per flag on the tag_health asset, read from `relation`
    (marts.tag_health_flags) in the candidate this run built (the published file before any)."""
    specs = [
        AssetCheckSpec(
            CHECK_PREFIX + flag,
            asset=health_key,
            blocking=False,
            description=f"Tag health: no tag or dimension is flagged {flag} "
            "(a warning for the stewards, never a publish blocker; docs/tag-health.md)",
            metadata={"flag": flag},
        )
        for flag in FLAGS
    ]

    @multi_asset_check(specs=specs, can_subset=True, name="tag_health_flags")
    def tag_health_checks(context: AssetCheckExecutionContext, warehouse: Warehouse
                          ) -> Iterator[AssetCheckResult]:
        if on_engine():  # the flags are read from the DuckDB files (dbt's tests still run)
            context.log.info("tag health flags are read from the DuckDB candidate only: not "
                             "evaluated on this target (marts.tag_health_flags holds them)")
            return
        path = warehouse.candidate if warehouse.candidate.exists() else warehouse.published
        try:
            with duckdb.connect(str(path), read_only=True) as con:
                run_date, findings = flag_findings(con, relation)
        except duckdb.Error as error:
            context.log.warning(f"tag health flags not read: {path}: {error}")
            run_date, findings = None, {flag: [] for flag in FLAGS}
        for check_key in context.selected_asset_check_keys:
            flag = check_key.name.removeprefix(CHECK_PREFIX)
            yield check_result(check_key.asset_key, flag, run_date, findings.get(flag, []))

    return tag_health_checks
