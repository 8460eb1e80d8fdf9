"""The Great Expectations quality gate as Dagster asset checks: the one place that imports it.

Every checkpoint listed in expectations/gate.yml (`landing_zone`, `core`, `tag_marts`,
`authoritative_sources`, ...) is a blocking asset check `gx_<checkpoint>` on the
`publish/candidate` asset: the warehouse file the run has just built. One op runs
`crm_tags.quality.gate.run_gate` once on that file, for the selected checkpoints, and reports
each checkpoint's suites, findings (in steward language) and the Data Docs path.

A blocking (critical) finding fails its check with severity ERROR, so `publish/warehouse`
downstream does not run: BI tools keep the last published warehouse. Flagged (warning)
findings fail the check with severity WARN and publishing goes on.
"""

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    ConfigurableResource,
    MetadataValue,
    multi_asset_check,
)

from crm_tags import PROJECT_DIR
from crm_tags.quality.distribution import PUBLISHED_RUN_TABLE  # noqa: F401 (warehouse_state)
from orchestration import engine_runs, project
from orchestration.resources import WAREHOUSE_POOL, Warehouse

GATE_POLICY = PROJECT_DIR / "expectations" / "gate.yml"
CHECK_PREFIX = "gx_"
# Findings the gate files under this checkpoint concern the gate as a whole (warehouse
# unreadable, lineage unavailable): they fail every checkpoint's check. It is also the one
# check's name when expectations/gate.yml lists no checkpoints (all of them run).
WHOLE_GATE = "gate"


@dataclass(frozen=True)
class Suite:
    checkpoint: str
    suite: str
    evaluated: int = 0
    failed_blocking: int = 0
    flagged: int = 0


@dataclass(frozen=True)
class Finding:
    checkpoint: str
    suite: str
    description: str
    details: str = ""
    examples: Sequence[str] = ()


@dataclass(frozen=True)
class GateOutcome:
    """What the checks need from crm_tags.quality.gate.GateResult (tests build it directly)."""

    suites: list[Suite] = field(default_factory=list)
    failures: list[Finding] = field(default_factory=list)  # blocking
    warnings: list[Finding] = field(default_factory=list)  # flagged, not blocking
    notes: list[str] = field(default_factory=list)
    data_docs: Path | None = None
    seconds: float = 0.0

    @classmethod
    def from_result(cls, result: Any) -> "GateOutcome":
        def finding(f: Any) -> Finding:
            return Finding(f.checkpoint, f.suite, f.description, f.details, tuple(f.examples))

        return cls(
            suites=[
                Suite(s.checkpoint, s.suite, s.evaluated, s.failed_blocking, s.flagged)
                for s in result.suites
            ],
            failures=[finding(f) for f in result.failures],
            warnings=[finding(f) for f in result.warnings],
            notes=list(result.notes),
            data_docs=result.data_docs,
            seconds=result.seconds,
        )


def gate_checkpoints(policy: Path = GATE_POLICY) -> list[str]:
    """Checkpoints of expectations/gate.yml, read without importing GX (definitions load fast)."""
    if not policy.exists():
        return []
    return list(yaml.safe_load(policy.read_text()).get("checkpoints") or [])


class QualityGate(ConfigurableResource):
    """Runs the GX checkpoints of crm_tags.quality.gate on a warehouse file."""

    # GX runtime project, validation results and Data Docs (None: expectations/uncommitted/)
    runtime_dir: str | None = None
    build_docs: bool = True

    def run(self, warehouse: Path, checkpoints: list[str]) -> GateOutcome:
        """Run `checkpoints` (empty: all of gate.yml) on `warehouse`, read-only."""
        from crm_tags.quality.gate import run_gate

        result = run_gate(
            warehouse,
            # the manifest this code location was loaded from: no second `dbt parse`
            manifest=project.dbt_project.manifest_path,
            runtime_dir=Path(self.runtime_dir) if self.runtime_dir else None,
            checkpoints=checkpoints or None,
            build_docs=self.build_docs,
        )
        return GateOutcome.from_result(result)


def carry_published_history(candidate: Path, published: Path) -> str | None:
    """Let the gate's swing check compare with the last *published* run (see
    crm_tags.quality.publish): drop the candidate's own published-run marker, carry the
    distribution history over."""
    from crm_tags.quality.publish import prepare_candidate

    return prepare_candidate(published, candidate)


def record_published_run(candidate: Path, run_id: str) -> None:
    """Append the candidate's tag distribution to its history before it is published."""
    import duckdb

    from crm_tags.quality.distribution import record_run

    with duckdb.connect(str(candidate)) as con:
        record_run(con, run_id, dt.datetime.now(dt.UTC).replace(tzinfo=None))
        con.execute("checkpoint")


def build_quality_gate_checks(
    candidate_key: AssetKey, checkpoints: Iterable[str] | None = None
) -> AssetChecksDefinition:
    checkpoints = list(gate_checkpoints() if checkpoints is None else checkpoints) or [WHOLE_GATE]
    specs = [
        AssetCheckSpec(
            CHECK_PREFIX + checkpoint,
            asset=candidate_key,
            blocking=True,
            description=f"Great Expectations checkpoint `{checkpoint}` on the candidate "
            "warehouse; a blocking finding stops publishing.",
            metadata={"checkpoint": checkpoint},
        )
        for checkpoint in checkpoints
    ]

    @multi_asset_check(specs=specs, can_subset=True, name="quality_gate", pool=WAREHOUSE_POOL)
    def quality_gate(
        context: AssetCheckExecutionContext, warehouse: Warehouse, gate: QualityGate
    ) -> Iterator[AssetCheckResult]:
        selected = sorted(context.selected_asset_check_keys, key=lambda k: k.name)
        names = [key.name.removeprefix(CHECK_PREFIX) for key in selected]
        if engine_runs.on_engine():
            # gated in the engine by crm_dbt (crm-tags build's path): its findings, reported here
            record = engine_runs.stored_result(context.run.run_id, context.partition_key)
            outcome = engine_runs.gate_outcome(record)
        else:
            note = carry_published_history(warehouse.candidate, warehouse.published)
            outcome = gate.run(warehouse.candidate, [n for n in names if n != WHOLE_GATE])
            if note:
                outcome.notes.append(note)
        for check_key in selected:
            yield _result(check_key.asset_key, check_key.name, outcome)

    return quality_gate


def _result(asset_key: AssetKey, check_name: str, outcome: GateOutcome) -> AssetCheckResult:
    checkpoint = check_name.removeprefix(CHECK_PREFIX)
    mine = {checkpoint, WHOLE_GATE}
    every = checkpoint == WHOLE_GATE  # the single whole-gate check reports everything
    failures = [f for f in outcome.failures if every or f.checkpoint in mine]
    warnings = [f for f in outcome.warnings if every or f.checkpoint == checkpoint]
    suites = [s for s in outcome.suites if every or s.checkpoint == checkpoint]
    metadata: dict[str, Any] = {
        "suites": MetadataValue.md(_suite_table(suites)),
        "blocking_findings": len(failures),
        "flagged_findings": len(warnings),
        "gate_seconds": round(outcome.seconds, 1),
    }
    if failures or warnings:
        metadata["findings"] = MetadataValue.md(_findings(failures, warnings))
    if outcome.data_docs:
        metadata["data_docs"] = MetadataValue.path(str(outcome.data_docs))
    if outcome.notes:
        metadata["notes"] = MetadataValue.md("\n".join(f"- {note}" for note in outcome.notes))
    first = (failures or warnings or [None])[0]
    return AssetCheckResult(
        asset_key=asset_key,
        check_name=check_name,
        passed=not failures and not warnings,
        severity=AssetCheckSeverity.WARN if warnings and not failures else AssetCheckSeverity.ERROR,
        description=f"[{first.suite}] {first.description}" if first else None,
        metadata=metadata,
    )


def _suite_table(suites: list[Suite]) -> str:
    lines = ["| suite | expectations | blocking failures | flagged |", "|---|---|---|---|"]
    lines += [f"| {s.suite} | {s.evaluated} | {s.failed_blocking} | {s.flagged} |" for s in suites]
    return "\n".join(lines)


def _findings(failures: list[Finding], warnings: list[Finding]) -> str:
    lines = []
    for label, findings in (("blocking", failures), ("flagged", warnings)):
        for f in findings:
            lines.append(f"- **{label}** [{f.suite}] {f.description}: {f.details}")
            lines += [f"  - `{example}`" for example in f.examples]
    return "\n".join(lines)
