"""The quality gate (`crm-tags validate`): every GX checkpoint on a warehouse, inside DuckDB.

    result = run_gate(Path("data/warehouse.duckdb"))
    result.passed          # False when a blocking (critical) expectation failed
    print(result.report()) # per-suite summary, the failures in steward language, Data Docs path

The suites are code in expectations/suites/ (one file per checkpoint), the steward-tuned
numbers in expectations/gate.yml. Each run compiles them into a file-backed GX project in the
runtime directory (default expectations/uncommitted/, git-ignored), validates through a GX SQL
datasource over the warehouse file opened read-only (crm_tags.quality.duckdb_datasource: every
metric is a SQL query run by DuckDB), and builds the Data Docs site there.

Write-audit-publish (a failed gate never replaces the marts BI tools read) is
crm_tags.quality.publish.build_and_publish; `crm-tags validate --build-and-publish` runs it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import logging
import os
import shutil
import sys
import time
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import duckdb
import yaml

from crm_tags import PROJECT_DIR
from crm_tags.contract import landing_tables
from crm_tags.quality.distribution import previous_run
from crm_tags.quality.lineage import load_manifest, tag_lineage
from crm_tags.quality.spec import CatalogTag, GateFacts, Suite, Table

EXPECTATIONS_DIR = PROJECT_DIR / "expectations"
DEFAULT_RUNTIME_DIR = EXPECTATIONS_DIR / "uncommitted"
DEFAULT_WAREHOUSE = PROJECT_DIR / "data" / "warehouse.duckdb"
DATASOURCE = "warehouse"


@dataclass
class Finding:
    """A failed (or flagged) expectation, in the words a steward reads."""

    checkpoint: str
    suite: str
    severity: str  # critical (blocking), warning, info
    description: str
    details: str  # what was observed, e.g. "2 of 1,989 rows"
    examples: list[str] = field(default_factory=list)  # the first offending values

    def __str__(self) -> str:
        lines = [f"[{self.suite}] {self.description}", f"    {self.details}"]
        lines += [f"    - {example}" for example in self.examples[:5]]
        if len(self.examples) > 5:
            lines.append(f"    - ... {len(self.examples) - 5} more in Data Docs")
        return "\n".join(lines)


@dataclass
class SuiteSummary:
    checkpoint: str
    suite: str
    evaluated: int
    failed_blocking: int
    flagged: int

    @property
    def ok(self) -> bool:
        return self.failed_blocking == 0


@dataclass
class GateResult:
    passed: bool
    warehouse: Path
    run_date: dt.date | None
    customers: int
    suites: list[SuiteSummary] = field(default_factory=list)
    failures: list[Finding] = field(default_factory=list)  # blocking
    warnings: list[Finding] = field(default_factory=list)  # flagged, not blocking
    notes: list[str] = field(default_factory=list)
    data_docs: Path | None = None  # index.html of the Data Docs site
    seconds: float = 0.0

    def report(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        lines = [(
            f"Quality gate {verdict}: {self.warehouse} (run date {self.run_date}, "
            f"{self.customers:,} customers, {self.seconds:.1f} s)"
        )]
        checkpoint = None
        for suite in self.suites:
            if suite.checkpoint != checkpoint:
                checkpoint = suite.checkpoint
                lines.append(f"  {checkpoint}")
            mark = "ok  " if suite.ok else "FAIL"
            flagged = f", {suite.flagged} flagged" if suite.flagged else ""
            failed = f", {suite.failed_blocking} blocking" if suite.failed_blocking else ""
            lines.append(f"    {mark} {suite.suite:<48} {suite.evaluated:>3} expectations"
                         f"{failed}{flagged}")
        if self.failures:
            lines.append("Blocking failures (the marts must not be published):")
            lines += [f"  x {finding}" for finding in self.failures]
        if self.warnings:
            lines.append("Flagged for a steward (not blocking):")
            lines += [f"  ! {finding}" for finding in self.warnings]
        lines += [f"Note: {note}" for note in self.notes]
        if self.data_docs:
            lines.append(f"Data Docs: {self.data_docs.as_uri()}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# Facts the suites are built from (read with a plain read-only DuckDB connection).
# ------------------------------------------------------------------------------------------

def load_policy(path: Path | None = None) -> dict:
    return yaml.safe_load((path or EXPECTATIONS_DIR / "gate.yml").read_text())


def read_facts(warehouse: Path, manifest: dict, policy: dict) -> GateFacts:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        run_date = con.execute("select max(as_of_date) from audit.reconciliation").fetchone()[0]
        customers = con.execute("select count(*) from marts.customer_profile").fetchone()[0]
        catalog = {
            row[0]: CatalogTag(*row)
            for row in con.execute(
                "select tag_code, tag_level, is_multi_valued, authoritative_source, source_tables"
                " from reference.tag_definitions order by tag_code"
            ).fetchall()
        }
        catalog_values: dict[str, list[str]] = {}
        for tag_code, tag_value in con.execute(
            "select tag_code, tag_value from reference.tag_value_definitions"
            " order by tag_code, sort_order"
        ).fetchall():
            catalog_values.setdefault(tag_code, []).append(tag_value)
        tag_as_of = dict(con.execute(
            "select tag_code, max(as_of_date) from marts.customer_tags group by tag_code"
        ).fetchall())
        previous, previous_customers = previous_run(con)
    lineage = tag_lineage(manifest, {code: tag.source_tables for code, tag in catalog.items()})
    return GateFacts(
        run_date=run_date or dt.date.today(),
        customers=int(customers),
        policy=policy,
        catalog=catalog,
        catalog_values=catalog_values,
        contract=landing_tables(),
        lineage=lineage,
        tag_as_of=tag_as_of,
        previous_run=previous,
        previous_customers=previous_customers,
    )


def parse_manifest(target_path: Path) -> Path:
    """`dbt parse` the project into `target_path`: the lineage of the code as it is now."""
    from crm_tags.build import run_dbt

    run_dbt(["parse"], warehouse=target_path / "parse.duckdb", target_path=target_path, quiet=True)
    return target_path / "manifest.json"


def load_checkpoint_module(name: str) -> ModuleType:
    path = EXPECTATIONS_DIR / "suites" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"crm_tags_gate_suites.{name}", path)
    assert spec and spec.loader, path
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------------------------------
# GX: the runtime project, compiling suites, reading results.
# ------------------------------------------------------------------------------------------

def open_context(runtime_dir: Path, warehouse: Path, suites: list[Suite]):  # -> FileDataContext
    """A file-backed GX project in `runtime_dir`, from the committed expectations/ config.

    The warehouse datasource and one asset per suite are written into the project file in one
    go: adding them one by one through the API rewrites the YAML file after every asset, which
    costs more than the validation itself.
    """
    import great_expectations as gx

    from crm_tags.quality.duckdb_datasource import duckdb_url

    runtime_dir.mkdir(parents=True, exist_ok=True)
    # Compiled suites, validation definitions and checkpoints are rebuilt from code every run;
    # validation results and Data Docs accumulate (stewards see earlier runs too).
    shutil.rmtree(runtime_dir / "compiled", ignore_errors=True)
    config = yaml.safe_load((EXPECTATIONS_DIR / "great_expectations.yml").read_text())
    assets: dict[str, dict] = {}
    for suite in suites:
        batch_definitions = {"all": {"id": str(uuid.uuid4()), "partitioner": None}}
        if isinstance(suite.asset, Table):
            assets[suite.name] = {"type": "table", "table_name": suite.asset.name,
                                  "schema_name": suite.asset.schema,
                                  "batch_definitions": batch_definitions}
        else:
            # GX takes only queries starting with SELECT; CTEs go inside a derived table.
            query = f"select * from (\n{suite.asset.sql.strip()}\n) as checked"
            assets[suite.name] = {"type": "query", "query": query,
                                  "batch_definitions": batch_definitions}
    config["fluent_datasources"] = {DATASOURCE: {
        "type": "duckdb",
        "connection_string": duckdb_url(warehouse),
        # read-only: the gate never writes the warehouse it audits; BI readers may share it
        "kwargs": {"connect_args": {"read_only": True}},
        # each query asset is computed once into a temporary table, then measured
        "create_temp_table": True,
        "assets": assets,
    }}
    (runtime_dir / "great_expectations.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return gx.get_context(mode="file", context_root_dir=str(runtime_dir))


def _validation_definitions(context, suites: list[Suite]) -> list:
    import great_expectations as gx

    datasource = context.data_sources.get(DATASOURCE)
    definitions = []
    for suite in suites:
        batch = datasource.get_asset(suite.name).get_batch_definition("all")
        gx_suite = context.suites.add(gx.ExpectationSuite(
            name=suite.name, expectations=suite.expectations))
        definitions.append(context.validation_definitions.add(
            gx.ValidationDefinition(name=suite.name, data=batch, suite=gx_suite)))
    return definitions


RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 10}


def _run_one_by_one(result: GateResult, checkpoint: str, definitions: list, run_id) -> list:
    outcomes = []
    for definition in definitions:
        try:
            validation = definition.run(result_format=RESULT_FORMAT, run_id=run_id)
        except Exception as error:  # noqa: BLE001 - reported as a blocking finding
            result.suites.append(SuiteSummary(checkpoint, definition.name, 0, 1, 0))
            result.failures.append(Finding(
                checkpoint, definition.name, "critical",
                "This check could not be evaluated, so its data is unverified.",
                _first_line(error)))
            continue
        outcomes.append((None, validation))
    return outcomes


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:500] if text else type(error).__name__


def _observed(result: dict) -> tuple[str, list[str]]:
    """What GX observed, shortly (counts), and the first unexpected values."""
    if result.get("unexpected_count") is not None:
        count, total = result["unexpected_count"], result.get("element_count")
        text = f"{count:,} of {total:,} rows" if total is not None else f"{count:,} rows"
        examples = list(dict.fromkeys(str(v) for v in result.get("partial_unexpected_list") or []))
        return text + (", e.g.:" if examples else ""), examples
    if "observed_value" in result:
        return f"observed {result['observed_value']}", []
    return str(result)[:500], []


def _raised(exception_info: dict) -> str | None:
    """The first error message in GX's exception_info (flat, or keyed by metric), if any."""
    infos = [exception_info] + [v for v in exception_info.values() if isinstance(v, dict)]
    for info in infos:
        if info.get("raised_exception") or info.get("exception_message"):
            return _first_line(info.get("exception_message") or "unknown error")
    return None


def _severity(config) -> str:
    severity = getattr(config, "severity", None) or "critical"
    return getattr(severity, "value", str(severity))


def run_gate(
    warehouse: Path = DEFAULT_WAREHOUSE,
    *,
    manifest: Path | None = None,
    runtime_dir: Path | None = None,
    policy: Path | None = None,
    checkpoints: list[str] | None = None,
    build_docs: bool = True,
) -> GateResult:
    """Run every checkpoint on `warehouse` (read-only) and return what it found.

    manifest: the dbt manifest.json the lineage check reads; None = `dbt parse` the current
    code into <runtime_dir>/dbt_target. runtime_dir: where the GX project, validation results
    and Data Docs go (default expectations/uncommitted/).
    """
    started = time.monotonic()
    warehouse = Path(warehouse).resolve()
    runtime_dir = Path(runtime_dir or DEFAULT_RUNTIME_DIR).resolve()
    result = GateResult(passed=False, warehouse=warehouse, run_date=None, customers=0)
    if not warehouse.exists():
        result.failures.append(Finding("gate", "gate", "critical", "The warehouse file is missing.",
                                       str(warehouse)))
        return result

    policy_doc = load_policy(policy)
    try:
        manifest_path = manifest or parse_manifest(runtime_dir / "dbt_target")
        facts = read_facts(warehouse, load_manifest(manifest_path), policy_doc)
    except Exception as error:  # noqa: BLE001 - no facts, no gate: say why and block
        result.failures.append(Finding(
            "gate", "gate", "critical",
            "The gate could not read the warehouse or the dbt lineage, so nothing was validated.",
            _first_line(error)))
        result.seconds = time.monotonic() - started
        return result
    result.run_date, result.customers = facts.run_date, facts.customers

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # Table assets name their schema (staging, core, marts, ... of one DuckDB file);
            # GX 1.24 would rather have one schema per datasource connection.
            warnings.filterwarnings("ignore", message="`schema_name` is deprecated",
                                    category=DeprecationWarning)
            _validate(result, facts, warehouse, runtime_dir,
                      checkpoints or policy_doc["checkpoints"], build_docs)
    except Exception as error:  # noqa: BLE001 - the gate must block, never crash the pipeline
        result.failures.append(Finding("gate", "gate", "critical",
                                       "The gate itself failed, so nothing counts as validated.",
                                       _first_line(error)))
    result.notes += facts.notes
    result.passed = not result.failures
    result.seconds = time.monotonic() - started
    return result


def _validate(result: GateResult, facts: GateFacts, warehouse: Path, runtime_dir: Path,
              checkpoints: list[str], build_docs: bool) -> None:
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    import crm_tags.quality.duckdb_datasource  # noqa: F401 - registers the `duckdb` datasource type

    plan: list[tuple[str, list[Suite]]] = []
    for name in checkpoints:
        try:
            plan.append((name, load_checkpoint_module(name).build(facts)))
        except Exception as error:  # noqa: BLE001 - a checkpoint that cannot be built blocks
            result.failures.append(Finding(
                name, name, "critical",
                "This checkpoint could not be built from its suite file, so its data is "
                "unverified.", _first_line(error)))
    context = open_context(runtime_dir, warehouse, [s for _, suites in plan for s in suites])
    run_id = RunIdentifier(run_name=f"{facts.run_date}_{warehouse.stem}",
                           run_time=dt.datetime.now(dt.UTC))
    validated = []
    try:
        for name, suites in plan:
            definitions = _validation_definitions(context, suites)
            checkpoint = context.checkpoints.add(gx.Checkpoint(
                name=name, validation_definitions=definitions, result_format=RESULT_FORMAT))
            try:
                outcomes = list(checkpoint.run(run_id=run_id).run_results.items())
            except Exception:  # noqa: BLE001 - a batch that cannot be loaded stops the whole
                # checkpoint in GX; rerun its suites one by one to name the broken one
                outcomes = _run_one_by_one(result, name, definitions, run_id)
            for identifier, validation in outcomes:
                if identifier is not None:
                    validated.append(identifier)
                _collect(result, name, validation)
    finally:
        # release the warehouse file: the publisher may replace it right after
        context.data_sources.get(DATASOURCE).get_execution_engine().close()
    if build_docs:
        try:
            # only this run's pages are rendered; earlier runs' pages are already on the site
            context.build_data_docs(resource_identifiers=validated)
            result.data_docs = runtime_dir / "data_docs" / "local_site" / "index.html"
        except Exception as error:  # noqa: BLE001 - the docs report the gate; they do not gate
            result.notes.append(f"Data Docs could not be built: {_first_line(error)}")


def _collect(result: GateResult, checkpoint: str, validation) -> None:
    suite_name = validation.suite_name
    summary = SuiteSummary(checkpoint, suite_name, len(validation.results), 0, 0)
    for item in validation.results:
        config = item.expectation_config
        severity = _severity(config)
        description = config.description or config.type
        error = _raised(item.exception_info or {})
        if error is not None:
            finding = Finding(checkpoint, suite_name, severity,
                              description + " (could not be evaluated)", error)
        elif item.success and severity == "info":
            result.notes.append(f"{suite_name}: {description} {_observed(item.result or {})[0]}")
            continue
        elif item.success:
            continue
        else:
            finding = Finding(checkpoint, suite_name, severity, description,
                              *_observed(item.result or {}))
        if severity == "critical" or error is not None:
            summary.failed_blocking += 1
            result.failures.append(finding)
        elif severity == "warning":
            summary.flagged += 1
            result.warnings.append(finding)
    result.suites.append(summary)


def build_and_publish(raw_dir: Path, warehouse: Path, as_of: dt.date | str | None = None,
                      **kwargs):  # -> crm_tags.quality.publish.PublishResult
    """Write-audit-publish; see crm_tags.quality.publish.build_and_publish."""
    from crm_tags.quality.publish import build_and_publish as write_audit_publish

    return write_audit_publish(raw_dir, warehouse, as_of, **kwargs)


# ------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--warehouse", type=Path,
        default=Path(os.environ.get("CRM_WAREHOUSE_PATH", DEFAULT_WAREHOUSE)),
        help="DuckDB warehouse to validate, or to publish to with --build-and-publish "
             "(default: $CRM_WAREHOUSE_PATH or data/warehouse.duckdb)")
    parser.add_argument("--manifest", type=Path, default=None,
                        help="dbt manifest.json for the lineage check (default: dbt parse now)")
    parser.add_argument("--runtime-dir", type=Path, default=DEFAULT_RUNTIME_DIR,
                        help="GX runtime project, results and Data Docs "
                             "(default: expectations/uncommitted)")
    parser.add_argument("--no-docs", action="store_true", help="skip building Data Docs")
    parser.add_argument(
        "--build-and-publish", action="store_true",
        help="write-audit-publish: dbt build into a candidate file next to --warehouse, gate "
             "it, and replace --warehouse only when the gate passes")
    parser.add_argument("--raw-dir", type=Path,
                        default=Path(os.environ.get("CRM_RAW_DIR", PROJECT_DIR / "data" / "raw")),
                        help="landing zone for --build-and-publish")
    parser.add_argument("--as-of", default=None, help="run date for --build-and-publish")
    parser.add_argument("--full-refresh", action="store_true",
                        help="with --build-and-publish: rebuild the candidate from scratch instead "
                             "of refreshing a copy of the published warehouse incrementally")


def run(args: argparse.Namespace) -> int:
    if args.build_and_publish:
        from crm_tags.build import DbtError

        try:
            published = build_and_publish(args.raw_dir, args.warehouse, args.as_of,
                                          runtime_dir=args.runtime_dir,
                                          full_refresh=args.full_refresh)
        except DbtError as error:
            print(f"{error}\nNOT published: {args.warehouse} still holds the last good marts.",
                  file=sys.stderr)
            return 1
        print(published.report())
        return 0 if published.published else 1
    result = run_gate(args.warehouse, manifest=args.manifest, runtime_dir=args.runtime_dir,
                      build_docs=not args.no_docs)
    print(result.report())
    return 0 if result.passed else 1


if __name__ == "__main__":  # pragma: no cover
    _parser = argparse.ArgumentParser(prog="crm-tags validate")
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
