"""Dagster's runs on the postgres and spark targets: the same write-audit-publish as `crm-tags
build --target postgres|spark`, through the same code (docs/engines.md, "Dagster").

On DuckDB the run's steps are the pipeline: `crm_dbt` runs dagster-dbt's `dbt build` into the
candidate file, `quality_gate` audits it, `publish/warehouse` renames it over the published
file. On another engine a build is more than one `dbt build` (`crm-tags load`, dbt in waves
around the host-run Python models, candidate schemas with the published tables carried, the
gate in the engine, PostgreSQL's one-transaction swap; Spark's build in one process of its
own environment), so `crm_dbt` calls crm_tags.quality.publish.build_and_publish, the function
`crm-tags build` calls, with the run's partition date and the selected dbt nodes. It reports
each selected model's materialisation and each selected dbt test's check from the run results
of every dbt build it ran (crm_tags.python_on_host.RUN_RESULTS), and keeps the PublishResult in
the run's target dir: the `publish/candidate` asset, the `quality_gate` checks and the
`publish/warehouse` asset of the same run report it (the gate's findings per checkpoint, the
swap), so a gate failure still shows as a failed blocking check that stops publish/warehouse,
and the published schemas are untouched, as with `crm-tags build`.

What reads the DuckDB files is skipped there, with a log line: the tag rows and value shares on
each tag's materialisation, tag health's metadata and flag checks, the warehouse-state sensor
and the segments job (they read the published DuckDB file).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
)

from crm_tags.build import current_target
from orchestration import project

RESULT_FILE = "engine_result.json"


def on_engine() -> bool:
    """A run on a target other than DuckDB ($CRM_TARGET, read at run time like profiles.yml)."""
    return current_target() != "duckdb"


def run_target_dir(run_id: str, as_of: str) -> Path:
    """The dbt target dir of one run (crm_dbt's): its artifacts and the engine's result."""
    return project.DBT_TARGET_DIR / "runs" / f"{run_id[:8]}-{as_of}"


def dbt_selection(context: AssetExecutionContext, node_of_key: Mapping[AssetKey, str]
                  ) -> str | None:
    """The selected dbt models, seeds and snapshots as a dbt selection (None: all of them)."""
    assets = set(context.assets_def.node_keys_by_output_name.values())  # .keys: the selected
    selected = set(context.selected_asset_keys) & assets
    if selected == assets:
        return None
    return " ".join(sorted(node_of_key[key] for key in selected if key in node_of_key))


def build_on_engine(context: AssetExecutionContext, raw_dir: Path, published: Path,
                    runtime_dir: Path | None, node_of_key: Mapping[AssetKey, str]
                    ) -> Iterator[Any]:
    """`crm-tags build` for the run's date and selection; then the selected assets' and dbt
    checks' events from the run results. A failed dbt build fails the step (nothing published:
    the candidate is kept as `<schema>__rejected` on PostgreSQL)."""
    from crm_tags.build import DbtError
    from crm_tags.python_on_host import RUN_RESULTS
    from crm_tags.quality.publish import build_and_publish
    from crm_tags.quality.spark_gate import result_to_json

    as_of = context.partition_key
    target = run_target_dir(context.run.run_id, as_of)
    select = dbt_selection(context, node_of_key)
    context.log.info(
        f"{current_target()} target: crm-tags build's write-audit-publish for {as_of} "
        f"({'every model' if select is None else 'selected: ' + select}); the tag rows and "
        "value shares are read from the DuckDB candidate only, not recorded here"
    )
    try:
        result = build_and_publish(raw_dir, published, as_of, target_path=target,
                                   runtime_dir=runtime_dir, quiet=True, select=select)
    except DbtError as error:
        yield from events_from_run_results(context, target / RUN_RESULTS, node_of_key)
        raise Failure(f"dbt failed on the {current_target()} target: nothing is published.\n"
                      f"{error}") from error
    record = {
        "published": result.published,
        "warehouse": str(result.warehouse),
        "candidate": str(result.candidate) if result.candidate else None,
        "error": result.error,
        "report": result.report(),
        "build_seconds": result.build_seconds,
        "gate_seconds": result.gate_seconds,
        "run_id": result.run_id,
        "privacy": result.privacy,
        "in_place": result.in_place,
        "gate": result_to_json(result.gate) if result.gate else None,
    }
    (target / RESULT_FILE).write_text(json.dumps(record))
    context.log.info(result.report())
    yield from events_from_run_results(context, target / RUN_RESULTS, node_of_key)
    if result.gate is None:  # refused before building (no masking key, another build running)
        raise Failure(result.report())


def events_from_run_results(context: AssetExecutionContext, folder: Path,
                            node_of_key: Mapping[AssetKey, str]) -> Iterator[Any]:
    """A materialisation per selected model/seed/snapshot dbt built, an asset check result per
    selected dbt test it ran, from each dbt build's run_results.json (in the order they ran)."""
    key_of_node = {name: key for key, name in node_of_key.items()}
    selected_keys = set(context.selected_asset_keys)
    checks = {key.name: key for key in context.selected_asset_check_keys}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        artifact = json.loads(path.read_text())
        for item in artifact["results"]:
            # model.<project>.<name>[.<version>], test.<project>.<name>.<hash>, seed., snapshot.
            kind, _, rest = item["unique_id"].split(".", 2)
            name = rest.split(".")[0]
            status, seconds = item["status"], round(item.get("execution_time") or 0.0, 2)
            if kind in ("model", "seed", "snapshot"):
                key = key_of_node.get(name)
                if key in selected_keys and status == "success":
                    yield MaterializeResult(asset_key=key, metadata={
                        "dbt_status": status, "execution_time_s": seconds,
                        "target": current_target(),
                        **({"rows_affected": item["adapter_response"]["rows_affected"]}
                           if "rows_affected" in (item.get("adapter_response") or {}) else {}),
                    })
            elif kind == "test" and name in checks:
                check = checks.pop(name)
                yield AssetCheckResult(
                    asset_key=check.asset_key, check_name=check.name,
                    passed=status == "pass",
                    severity=AssetCheckSeverity.WARN if status == "warn"
                    else AssetCheckSeverity.ERROR,
                    metadata={"dbt_status": status, "failures": item.get("failures") or 0,
                              "target": current_target()},
                    description=item.get("message") or None,
                )


def stored_result(run_id: str, as_of: str) -> dict[str, Any]:
    """The PublishResult crm_dbt kept for this run (it must have run in the same run)."""
    path = run_target_dir(run_id, as_of) / RESULT_FILE
    if not path.exists():
        raise Failure(
            f"On the {current_target()} target the candidate is built, gated and published by "
            "the crm_dbt step of the same run (crm-tags build's code path), which did not run "
            f"here ({path} is missing): run a job that includes the dbt models."
        )
    return json.loads(path.read_text())


def gate_outcome(record: Mapping[str, Any]) -> Any:
    """The stored gate result as the quality_gate checks' GateOutcome."""
    from crm_tags.quality.spark_gate import result_from_json
    from orchestration.quality_checks import GateOutcome

    outcome = GateOutcome.from_result(result_from_json(record["gate"]))
    outcome.notes.append(
        f"Run by crm-tags build's {current_target()} path in this run's crm_dbt step, in the "
        "engine on its candidate (docs/engines.md)."
    )
    return outcome


def candidate_metadata(record: Mapping[str, Any], as_of: str) -> dict[str, Any]:
    return {
        "as_of_date": as_of,
        "target": current_target(),
        "warehouse": record["warehouse"],
        "build_seconds": round(record["build_seconds"], 1),
        "candidate": (
            "built in place (Spark: no candidate)" if record["in_place"]
            else "the __candidate schemas, swapped in" if record["published"]
            else record["candidate"] or "none kept"
        ),
    }


def published_metadata(record: Mapping[str, Any]) -> dict[str, Any]:
    """What publish/warehouse records on an engine; a Failure when nothing was published."""
    if not record["published"]:
        raise Failure(record["report"])
    metadata: dict[str, Any] = {
        "target": current_target(),
        "warehouse": record["warehouse"],
        "run_id": record["run_id"],
        "gate_seconds": round(record["gate_seconds"], 1),
        "report": MetadataValue.md(f"```\n{record['report']}\n```"),
    }
    if record["in_place"]:
        metadata["published"] = "no: Spark has no BI publish; the gate passed on the build"
    return metadata
