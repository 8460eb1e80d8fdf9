"""The tag-health figures and flags as Dagster materialisation metadata of marts.tag_health
(docs/tag-health.md): the run's flag count, each flag with its reason, and the coverage per tag.
A flag is a warning for the stewards: it is shown, never raised as a failure, and the quality
gate never reads it.
"""

from __future__ import annotations

from typing import Any

import duckdb
from dagster import MetadataValue

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
