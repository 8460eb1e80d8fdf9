"""The quality gate (`crm-tags validate`): every GX checkpoint on a warehouse, inside DuckDB.

    result = run_gate(Path("data/warehouse.duckdb"))
    result.passed          # False when a blocking (critical) expectation failed
    print(result.report()) # per-suite summary, the failures in steward language, Data Docs path

The suites are code in expectations/suites/ (one file per checkpoint), the steward-tuned
numbers in expectations/gate.yml. Each run compiles them into a file-backed GX project in the
warehouse's own directory under the runtime directory (default expectations/uncommitted/,
git-ignored; one per warehouse, see site_dir), validates through a GX SQL datasource over the
warehouse file opened read-only (crm_tags.quality.duckdb_datasource: every metric is a SQL query
run by DuckDB), and writes the warehouse's Data Docs site there (crm_tags.quality.data_docs).

Write-audit-publish (a failed gate never replaces the marts BI tools read) is
crm_tags.quality.publish, which imports this module; this module never imports it.
`crm-tags validate` is crm_tags.quality.validate.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import importlib.util
import logging
import os
import re
import shutil
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
from crm_tags.quality.connection import (
    SchemaNames,
    SparkSqlConnection,
    for_engine,
    pg_connection,
    pg_label,
    pg_url,
)
from crm_tags.quality.distribution import previous_run
from crm_tags.quality.lineage import load_manifest, tag_lineage
from crm_tags.quality.spec import CatalogTag, GateFacts, Suite, Table

EXPECTATIONS_DIR = PROJECT_DIR / "expectations"
DEFAULT_RUNTIME_DIR = EXPECTATIONS_DIR / "uncommitted"
DEFAULT_WAREHOUSE = PROJECT_DIR / "data" / "warehouse.duckdb"
POLICY = EXPECTATIONS_DIR / "gate.yml"
DATASOURCE = "warehouse"
PG_URL_VARIABLE = "CRM_GATE_PG_URL"


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
class Check:
    """One expectation as evaluated: what Data Docs show for every check, passed or not."""

    checkpoint: str
    suite: str
    severity: str
    description: str
    expectation: str  # the GX form, e.g. "expect_column_values_to_be_null(column=problem)"
    status: str  # passed | failed | error (could not be evaluated)
    observed: str  # what was measured, in words: "measured 42.0% (bounds: at least 50.0%)"
    examples: list[str] = field(default_factory=list)


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
    checks: list[Check] = field(default_factory=list)  # every expectation evaluated
    data_docs: Path | None = None  # index.html of the warehouse's Data Docs site
    data_docs_run: Path | None = None  # this run's page on that site
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
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
    return yaml.safe_load(Path(path or POLICY).read_text())


@contextlib.contextmanager
def _facts_connection(warehouse: Path, engine: str, spark=None, names: SchemaNames | None = None):
    if engine == "postgres":
        with pg_connection(names=names) as con:
            yield con
    elif engine == "spark":
        yield SparkSqlConnection(spark)
    else:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            yield con


def read_facts(warehouse: Path, manifest: dict, policy: dict, engine: str = "duckdb",
               spark=None, names: SchemaNames | None = None) -> GateFacts:
    with _facts_connection(warehouse, engine, spark, names) as con:
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
        previous = previous_run(con, run_date)
        marts = (names or SchemaNames()).schema("marts")  # a candidate's, when auditing one
        relations = frozenset("marts." + row[0] for row in con.execute(
            f"select table_name from information_schema.tables where table_schema = '{marts}'"
        ).fetchall())
    lineage = tag_lineage(manifest, {code: tag.source_tables for code, tag in catalog.items()})
    return GateFacts(
        run_date=run_date or dt.date.today(),
        customers=int(customers),
        policy=policy,
        catalog=catalog,
        catalog_values=catalog_values,
        contract=landing_tables(),
        lineage=lineage,
        previous=previous,
        relations=relations,
        engine=engine,
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

def open_context(project_dir: Path, warehouse: Path, suites: list[Suite],
                 engine: str = "duckdb", names: SchemaNames | None = None):  # -> FileDataContext
    """A file-backed GX project in `project_dir`, from the committed expectations/ config.

    The warehouse datasource and one asset per suite are written into the project file in one
    go: adding them one by one through the API rewrites the YAML file after every asset, which
    costs more than the validation itself. names: where the schemas the suites name are (a
    PostgreSQL candidate, crm_tags.pg_publish).
    """
    import great_expectations as gx

    from crm_tags.load import pg_connect_kwargs
    from crm_tags.quality.duckdb_datasource import duckdb_url

    project_dir.mkdir(parents=True, exist_ok=True)
    # Compiled suites, validation definitions and checkpoints are rebuilt from code every run;
    # validation results accumulate (and the Data Docs list earlier runs too).
    shutil.rmtree(project_dir / "compiled", ignore_errors=True)
    config = yaml.safe_load((EXPECTATIONS_DIR / "great_expectations.yml").read_text())
    assets: dict[str, dict] = {}
    for suite in suites:
        batch_definitions = {"all": {"id": str(uuid.uuid4()), "partitioner": None}}
        if engine == "spark":
            # GX's Spark datasource measures DataFrames: each suite's table or query is one,
            # handed over at validation (_spark_frame)
            assets[suite.name] = {"type": "dataframe", "batch_definitions": batch_definitions}
        elif isinstance(suite.asset, Table):
            assets[suite.name] = {"type": "table", "table_name": suite.asset.name,
                                  "schema_name": (names or SchemaNames()).schema(
                                      suite.asset.schema),
                                  "batch_definitions": batch_definitions}
        else:
            # GX takes only queries starting with SELECT; CTEs go inside a derived table.
            query = f"select * from (\n{for_engine(suite.asset.sql.strip(), engine, names)}\n) as checked"
            assets[suite.name] = {"type": "query", "query": query,
                                  "batch_definitions": batch_definitions}
    if engine == "spark":
        # GX's Spark execution engine in this process's session (crm_tags.quality.spark_gate);
        # GX's own persisting off: a query's frame is persisted by _spark_frame, a table's
        # read where it is (as on DuckDB and PostgreSQL)
        config["fluent_datasources"] = {DATASOURCE: {
            "type": "spark", "persist": False, "assets": assets}}
        (project_dir / "great_expectations.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        return gx.get_context(mode="file", context_root_dir=str(project_dir))
    if engine == "postgres":
        # GX's own PostgreSQL datasource (SQLAlchemy + psycopg2): every metric a query run by
        # the server; query assets materialised once into a temporary table there
        # the URL as a GX config variable: no password in the project file (and GX's URL check
        # refuses a unix-socket URL, which has no host)
        os.environ[PG_URL_VARIABLE] = pg_url(pg_connect_kwargs())
        config["fluent_datasources"] = {DATASOURCE: {
            "type": "postgres", "connection_string": "${" + PG_URL_VARIABLE + "}",
            "create_temp_table": True, "assets": assets}}
        (project_dir / "great_expectations.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        return gx.get_context(mode="file", context_root_dir=str(project_dir))
    config["fluent_datasources"] = {DATASOURCE: {
        "type": "duckdb",
        "connection_string": duckdb_url(warehouse),
        # read-only: the gate never writes the warehouse it audits; BI readers may share it
        "kwargs": {"connect_args": {"read_only": True}},
        # each query asset is computed once into a temporary table, then measured
        "create_temp_table": True,
        "assets": assets,
    }}
    (project_dir / "great_expectations.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return gx.get_context(mode="file", context_root_dir=str(project_dir))


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


def _not_evaluated(result: GateResult, checkpoint: str, name: str, error: Exception,
                   where: str = "") -> None:
    """A suite that could not run: a blocking finding, never a silent pass."""
    result.suites.append(SuiteSummary(checkpoint, name, 0, 1, 0))
    _block(result, checkpoint, name,
           f"This check could not be evaluated{where}, so its data is unverified.",
           _first_line(error), "the suite's data asset")


def _block(result: GateResult, checkpoint: str, suite: str, description: str, detail: str,
           where: str) -> None:
    """A blocking finding about something that could not be checked at all (`where`: what
    failed), reported like a failed check so Data Docs show it too."""
    result.failures.append(Finding(checkpoint, suite, "critical", description, detail))
    result.checks.append(Check(checkpoint, suite, "critical", description, where, "error", detail))


def _run_one_by_one(result: GateResult, checkpoint: str, definitions: list, run_id) -> list:
    outcomes = []
    for definition in definitions:
        try:
            validation = definition.run(result_format=RESULT_FORMAT, run_id=run_id)
        except Exception as error:  # noqa: BLE001 - reported as a blocking finding
            _not_evaluated(result, checkpoint, definition.name, error)
            continue
        outcomes.append((None, validation))
    return outcomes


def _first_line(error: object) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:500] if text else type(error).__name__


# ------------------------------------------------------------------------------------------
# What an expectation observed, in words (the console report and Data Docs say the same).
# ------------------------------------------------------------------------------------------

def _percent(part: float, whole: float) -> str:
    if not whole:
        return "0%"
    share = 100.0 * part / whole
    return "<0.1%" if 0 < share < 0.1 else f"{share:.1f}%"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _number(value: object) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def _range(kwargs: dict, as_share: bool = False) -> str:
    def shown(value: object) -> str:
        return f"{float(value):.1%}" if as_share else _number(value)

    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    if low is not None and high is not None:
        return f"between {shown(low)} and {shown(high)}"
    if low is not None:
        return f"at least {shown(low)}"
    return f"at most {shown(high)}" if high is not None else "any value"


def _condition(condition: object) -> str:
    """A GX row condition as it reads: `rejection_reason is null`, `tag_key == 'vip'`."""
    if not isinstance(condition, dict):
        return str(condition)
    kind = condition.get("type")
    if kind in ("and", "or"):
        return f" {kind} ".join(_condition(part) for part in condition.get("conditions", []))
    column = (condition.get("column") or {}).get("name")
    if kind == "nullity":
        return f"{column} is {'' if condition.get('is_null') else 'not '}null"
    if kind == "comparison":
        return f"{column} {condition.get('operator')} {condition.get('parameter')!r}"
    return str(condition)


def expectation_form(config) -> str:
    """The GX expectation as a short call, e.g. `expect_column_values_to_be_in_set(column=x)`."""
    kwargs = config.kwargs or {}
    shown = [f"column={kwargs['column']}"] if "column" in kwargs else []
    for key in ("min_value", "max_value"):
        if kwargs.get(key) is not None:
            shown.append(f"{key}={_number(kwargs[key])}")
    if kwargs.get("value_set") is not None:
        shown.append(f"value_set=[{len(kwargs['value_set'])} values]")
    if kwargs.get("row_condition"):
        shown.append(f"where {_condition(kwargs['row_condition'])}")
    return f"{config.type}({', '.join(shown)})"


def observe(config, result: dict, success: bool) -> tuple[str, list[str]]:
    """What an expectation measured, in words, and the first offending values.

    A problem query's rows are problems: "2 problems" with their sentences, not "100%
    unexpected" of a table that holds nothing else. A measured aggregate (a tag's share of
    customers) is shown against its bounds. Row checks give counts of the rows they looked at.
    """
    kwargs = config.kwargs or {}
    meta = config.meta or {}
    examples = list(dict.fromkeys(str(v) for v in result.get("partial_unexpected_list") or []))
    if config.type == "expect_column_values_to_be_null" and kwargs.get("column") == "problem":
        count = int(result.get("unexpected_count") or 0)
        return ("no problem found" if success and not count
                else _plural(count, "problem") + (", e.g.:" if examples else "")), examples
    if "observed_value" in result:
        value = result["observed_value"]
        if meta.get("unit") == "share":
            measured = "no such value in the catalog" if value is None else f"{float(value):.1%}"
            return f"measured {measured} (expected {_range(kwargs, as_share=True)})", []
        if meta.get("unit"):  # a count recorded for information, e.g. "12 customers"
            return f"{value:,} {meta['unit']}" if isinstance(value, int) else \
                f"{value} {meta['unit']}", []
        expected = f" (expected {_range(kwargs)})" if {"min_value", "max_value"} & set(kwargs) \
            else ""
        return f"observed {value}{expected}", []
    if result.get("unexpected_count") is not None:
        rows, count = result.get("element_count") or 0, int(result["unexpected_count"])
        missing = int(result.get("missing_count") or 0)
        if config.type == "expect_column_values_to_not_be_null":
            column = kwargs.get("column")
            return (f"all {_plural(rows, 'row')} have {column} set" if not count else
                    f"{count:,} of {_plural(rows, 'row')} have no {column} "
                    f"({_percent(count, rows)})"), []
        checked = rows - missing  # GX leaves nulls to the not-null checks
        what = ("in the set" if "value_set" in kwargs
                else _range(kwargs) if {"min_value", "max_value"} & set(kwargs) else "as expected")
        empty = f" ({missing:,} empty, not checked here)" if missing else ""
        if not count:
            return f"all {_plural(checked, 'value')} {what}{empty}", []
        return (f"{count:,} of {_plural(checked, 'value')} not {what} "
                f"({_percent(count, checked)}){empty}" + (", e.g.:" if examples else "")), examples
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


# ------------------------------------------------------------------------------------------
# One site per warehouse.
# ------------------------------------------------------------------------------------------

# The write-audit-publish files of a warehouse `<name>.duckdb` (crm_tags.quality.publish:
# candidate_path, rejected_path): a gate run on one of them is a run of that warehouse.
_PUBLISH_FILE = re.compile(r"^\.(?P<name>.+)\.(candidate|rejected)$")


def published_warehouse(warehouse: Path) -> Path:
    """The warehouse a gate run on `warehouse` is a run of: itself, or for a write-audit-publish
    candidate `.<name>.candidate.duckdb` (or a kept `.rejected.` one) the `<name>.duckdb`
    beside it."""
    warehouse = Path(warehouse).resolve()
    match = _PUBLISH_FILE.match(warehouse.stem)
    return warehouse.with_name(match["name"] + warehouse.suffix) if match else warehouse


def site_dir(runtime_dir: Path, warehouse: Path) -> Path:
    """The directory of one warehouse's GX project, validation results and Data Docs:
    `<runtime_dir>/<name>-<hash of its path>`, so runs of different warehouses never share a
    site, and a candidate's runs land on the site of the warehouse it is published to."""
    published = published_warehouse(warehouse)
    digest = hashlib.sha1(str(published).encode()).hexdigest()[:8]
    return Path(runtime_dir) / f"{published.stem}-{digest}"


# ------------------------------------------------------------------------------------------
# The run.
# ------------------------------------------------------------------------------------------

def run_gate(
    warehouse: Path = DEFAULT_WAREHOUSE,
    *,
    manifest: Path | None = None,
    runtime_dir: Path | None = None,
    policy: Path | None = None,
    checkpoints: list[str] | None = None,
    build_docs: bool = True,
    engine: str = "duckdb",
    spark=None,
    names: SchemaNames | None = None,
) -> GateResult:
    """Run every checkpoint on `warehouse` (read-only) and return what it found.

    manifest: the dbt manifest.json the lineage check reads; None = `dbt parse` the current
    code into <runtime_dir>/dbt_target. runtime_dir: where each warehouse's GX project,
    validation results and Data Docs go, one directory per warehouse (site_dir; default
    expectations/uncommitted/). policy: the steward's numbers (default expectations/gate.yml).
    engine="postgres": the warehouse is the postgres target's database (CRM_PG_* settings;
    `warehouse` is not read), every check runs there. engine="spark": the spark target's
    tables ($CRM_SPARK_DIR), every check run by Spark SQL in `spark` (a SparkSession), or
    without one in a Spark process of its own (crm_tags.quality.spark_gate). names (postgres):
    the schemas to audit in place of the ones the suites name, e.g. the candidate schemas of a
    write-audit-publish build (crm_tags.pg_publish).
    """
    if engine == "spark" and spark is None:
        from crm_tags.quality.spark_gate import run_gate_on_spark

        return run_gate_on_spark(manifest=manifest, runtime_dir=runtime_dir, policy=policy,
                                 checkpoints=checkpoints, build_docs=build_docs)
    started = time.monotonic()
    runtime_dir = Path(runtime_dir or DEFAULT_RUNTIME_DIR).resolve()
    if engine == "spark":
        from crm_tags.quality.spark_gate import spark_label

        label = spark_label()
        result = GateResult(passed=False, warehouse=label, run_date=None, customers=0)
        site = runtime_dir / f"spark-{hashlib.sha1(label.encode()).hexdigest()[:8]}"
        published = label
    elif engine == "postgres":
        from crm_tags.load import pg_connect_kwargs

        label = pg_label(pg_connect_kwargs())
        result = GateResult(passed=False, warehouse=label, run_date=None, customers=0)
        site = runtime_dir / f"postgres-{hashlib.sha1(label.encode()).hexdigest()[:8]}"
        published = label
    else:
        warehouse = Path(warehouse).resolve()
        result = GateResult(passed=False, warehouse=warehouse, run_date=None, customers=0)
        if not warehouse.exists():
            result.failures.append(Finding("gate", "gate", "critical",
                                           "The warehouse file is missing.", str(warehouse)))
            return result
        site = site_dir(runtime_dir, warehouse)
        published = published_warehouse(warehouse)
    policy_doc = load_policy(policy)
    try:
        manifest_path = manifest or parse_manifest(runtime_dir / "dbt_target")
        facts = read_facts(warehouse, load_manifest(manifest_path), policy_doc, engine, spark,
                           names)
    except Exception as error:  # noqa: BLE001 - no facts, no gate: say why and block
        _block(result, "gate", "gate",
               "The gate could not read the warehouse or the dbt lineage, so nothing was "
               "validated.", _first_line(error), "reading the warehouse and the dbt manifest")
        facts = None
    if facts is not None:
        result.run_date, result.customers = facts.run_date, facts.customers
        logging.getLogger("great_expectations").setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                # Table assets name their schema (staging, core, marts, ... of one DuckDB
                # file); GX 1.24 would rather have one schema per datasource connection.
                warnings.filterwarnings("ignore", message="`schema_name` is deprecated",
                                        category=DeprecationWarning)
                _validate(result, facts, warehouse, site,
                          checkpoints or policy_doc["checkpoints"], spark, names)
        except Exception as error:  # noqa: BLE001 - the gate must block, never crash the pipeline
            _block(result, "gate", "gate",
                   "The gate itself failed, so nothing counts as validated.",
                   _first_line(error), "the gate run")
        result.notes += facts.notes
    result.passed = not result.failures
    result.seconds = time.monotonic() - started
    if build_docs:
        from crm_tags.quality.data_docs import write_site

        try:
            result.data_docs, result.data_docs_run = write_site(
                site / "data_docs", result, published)
        except Exception as error:  # noqa: BLE001 - the docs report the gate; they do not gate
            result.notes.append(f"Data Docs could not be written: {_first_line(error)}")
    return result


def _validate(result: GateResult, facts: GateFacts, warehouse: Path, site: Path,
              checkpoints: list[str], spark=None, names: SchemaNames | None = None) -> None:
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    import crm_tags.quality.duckdb_datasource  # noqa: F401 - registers the `duckdb` datasource type

    run_name = Path(str(warehouse)).stem if facts.engine == "duckdb" else facts.engine

    plan: list[tuple[str, list[Suite]]] = []
    for name in checkpoints:
        try:
            plan.append((name, load_checkpoint_module(name).build(facts)))
        except Exception as error:  # noqa: BLE001 - a checkpoint that cannot be built blocks
            _block(result, name, name,
                   "This checkpoint could not be built from its suite file, so its data is "
                   "unverified.", _first_line(error), f"expectations/suites/{name}.py")
    context = open_context(site, warehouse, [s for _, suites in plan for s in suites], facts.engine,
                           names)
    run_id = RunIdentifier(run_name=f"{facts.run_date}_{run_name}",
                           run_time=result.started_at)
    if facts.engine == "spark":
        for name, suites in plan:
            _validate_on_spark(result, name, suites, context, spark, run_id)
        return
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
            for _, validation in outcomes:
                _collect(result, name, validation)
    finally:
        # release the warehouse file: the publisher may replace it right after
        context.data_sources.get(DATASOURCE).get_execution_engine().close()


def _spark_frame(spark, suite: Suite):
    """The DataFrame a suite measures on Spark: its table where it is, or its query run once by
    Spark and persisted (the temporary table of the other engines)."""
    if isinstance(suite.asset, Table):
        return spark.table(f"{suite.asset.schema}.{suite.asset.name}")
    return spark.sql(for_engine(suite.asset.sql.strip(), "spark")).persist()


def _validate_on_spark(result: GateResult, checkpoint: str, suites: list[Suite], context, spark,
                       run_id) -> None:
    """One checkpoint's suites on Spark, one validation per suite: GX's Spark assets take their
    DataFrame at run time, one per suite (a GX checkpoint hands the same one to every suite).
    A suite whose data cannot be read blocks, named, as on the other engines."""
    for suite, definition in zip(suites, _validation_definitions(context, suites), strict=True):
        frame = None
        try:
            frame = _spark_frame(spark, suite)
            validation = definition.run(batch_parameters={"dataframe": frame},
                                        result_format=RESULT_FORMAT, run_id=run_id)
        except Exception as error:  # noqa: BLE001 - reported as a blocking finding
            _not_evaluated(result, checkpoint, suite.name, error, " on Spark")
            continue
        finally:
            if frame is not None and not isinstance(suite.asset, Table):
                frame.unpersist()
        _collect(result, checkpoint, validation)


def _collect(result: GateResult, checkpoint: str, validation) -> None:
    suite_name = validation.suite_name
    summary = SuiteSummary(checkpoint, suite_name, len(validation.results), 0, 0)
    for item in validation.results:
        config = item.expectation_config
        severity = _severity(config)
        description = config.description or config.type
        error = _raised(item.exception_info or {})
        if error is not None:
            observed, examples = error, []
            status = "error"
        else:
            observed, examples = observe(config, item.result or {}, bool(item.success))
            status = "passed" if item.success else "failed"
        result.checks.append(Check(checkpoint, suite_name, severity, description,
                                   expectation_form(config), status, observed, examples))
        if error is not None:
            finding = Finding(checkpoint, suite_name, severity,
                              description + " (could not be evaluated)", error)
        elif item.success and severity == "info":
            result.notes.append(f"{suite_name}: {description} {observed}")
            continue
        elif item.success:
            continue
        else:
            finding = Finding(checkpoint, suite_name, severity, description, observed, examples)
        if severity == "critical" or error is not None:
            summary.failed_blocking += 1
            result.failures.append(finding)
        elif severity == "warning":
            summary.flagged += 1
            result.warnings.append(finding)
    result.suites.append(summary)
