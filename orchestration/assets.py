"""Assets: the landing zone (observable), every dbt model/seed/snapshot, write-audit-publish.

Asset keys are `[schema, name]` as in the warehouse (`raw_orders/orders`,
`staging/stg_orders__orders`, `tags/tag_customer_grade`, `marts/customer_tags`); groups are the
layer, and for tag models the tag's dimension from the catalog (`tags_behaviour`, ...). A tag
asset's description is its catalog entry, its owner the catalog owner, and each of its
materialisations records the table's rows and the share of customers per value.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import duckdb
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetSpec,
    BackfillPolicy,
    DagsterEventType,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    ObserveResult,
    Output,
    asset,
    multi_observable_source_asset,
)
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from dagster_dbt.asset_utils import DAGSTER_DBT_PROJECT_METADATA_KEY

from crm_tags.catalog import Cadences, DbtGraph, read_catalog
from orchestration import engine_runs, project
from orchestration.descriptions import (
    dbt_node_description,
    dbt_test_description,
    md_code,
    raw_sql_markdown,
    tag_description,
)
from orchestration.freshness import freshness_policy
from orchestration.quality_checks import QualityGate, record_published_run
from orchestration.resources import WAREHOUSE_POOL, Warehouse, run_dates
from orchestration.tag_health import HEALTH_MODEL, health_metadata
from orchestration.tag_profile import population_relations, quoted_relation, tag_profile

project.prepare_manifest()
MANIFEST: dict[str, Any] = json.loads(project.dbt_project.manifest_path.read_text())
GRAPH = DbtGraph(MANIFEST)
CADENCES = Cadences(read_catalog(), GRAPH)
POPULATIONS = population_relations(GRAPH)

# dbt folder (below models/) -> group; tag models are grouped by dimension instead.
_LAYER_GROUPS = {
    ("staging",): "staging",
    ("intermediate",): "intermediate",
    ("marts", "core"): "core",
    ("marts",): "marts",
    ("audit",): "audit",
}


class CrmDbtTranslator(DagsterDbtTranslator):
    """Keys by schema, groups by layer / tag dimension, cadence and freshness from the catalog."""

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        schema = dbt_resource_props["config"].get("schema") or dbt_resource_props["schema"]
        return AssetKey([schema, dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        resource_type = dbt_resource_props["resource_type"]
        if resource_type == "source":
            return "landing"
        if resource_type == "seed":
            return "reference"
        if resource_type == "snapshot":
            return "snapshots"
        tag = CADENCES.tag_of_model(dbt_resource_props["name"])
        if tag is not None:
            return f"tags_{tag.dimension}"
        folder = tuple(dbt_resource_props["fqn"][1:-1])
        for prefix in sorted(_LAYER_GROUPS, key=len, reverse=True):
            if folder[: len(prefix)] == prefix:
                return _LAYER_GROUPS[prefix]
        return "other"

    def get_tags(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, str]:
        tags = dict(super().get_tags(dbt_resource_props))
        tag = CADENCES.tag_of_model(dbt_resource_props.get("name", ""))
        if tag is not None:
            tags.update({"cadence": tag.cadence, "dimension": tag.dimension})
        return tags

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        """The catalog entry for a tag; the dbt description (never the raw SQL) otherwise."""
        relation = relation_of(dbt_resource_props)
        tag = CADENCES.tag_of_model(dbt_resource_props.get("name", ""))
        if tag is not None:
            return tag_description(tag, relation)
        return dbt_node_description(dbt_resource_props, relation)

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str] | None:
        tag = CADENCES.tag_of_model(dbt_resource_props.get("name", ""))
        if tag is not None and tag.owner:
            return [f"team:{tag.owner}"]
        return super().get_owners(dbt_resource_props)

    def get_metadata(self, dbt_resource_props: Mapping[str, Any]) -> Mapping[str, Any]:
        metadata = dict(super().get_metadata(dbt_resource_props))
        tag = CADENCES.tag_of_model(dbt_resource_props.get("name", ""))
        if tag is not None:
            metadata.update(
                {
                    "tag_code": tag.code,
                    "refresh_frequency": tag.cadence,
                    "tag_level": tag.level,
                    "tag_owner": tag.owner,
                    "authoritative_source": tag.authoritative_source,
                }
            )
        sql = raw_sql_markdown(dbt_resource_props)
        if sql:
            metadata["raw_sql"] = MetadataValue.md(sql)
        return metadata

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        # dagster-dbt keeps the DbtProject object in the metadata, which the UI can only show as
        # "[DbtProject] (unserializable)"; runs find the project through the dbt resource.
        metadata = {
            k: v for k, v in spec.metadata.items() if k != DAGSTER_DBT_PROJECT_METADATA_KEY
        }
        spec = spec.replace_attributes(metadata=metadata)
        props = self.get_resource_props(manifest, unique_id)
        tag = CADENCES.tag_of_model(props.get("name", ""))
        if tag is not None:
            return spec.replace_attributes(freshness_policy=freshness_policy(tag.cadence))
        if props["resource_type"] == "model" and props["name"] in GRAPH.bi_marts:
            # every cadence's run rebuilds the marts, so they are at most a day old
            return spec.replace_attributes(freshness_policy=freshness_policy("daily"))
        return spec

    def get_asset_check_spec(
        self,
        asset_spec: AssetSpec,
        manifest: Mapping[str, Any],
        unique_id: str,
        project: DbtProject | None,
    ) -> AssetCheckSpec | None:
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None or spec.description:
            return spec
        test = manifest["nodes"][unique_id]
        return AssetCheckSpec(
            name=spec.name,
            asset=spec.asset_key,
            description=dbt_test_description(test),
            additional_deps=spec.additional_deps,
            metadata=spec.metadata,
            blocking=spec.blocking,
        )


def relation_of(props: Mapping[str, Any]) -> str:
    """schema.table of a dbt node in the warehouse."""
    return f"{props['schema']}.{props.get('alias') or props['name']}"


translator = CrmDbtTranslator(DagsterDbtTranslatorSettings(enable_asset_checks=True))


def asset_key_of(name: str) -> AssetKey:
    """The asset key of a dbt model, seed or snapshot, by name."""
    return translator.get_asset_key(GRAPH.nodes[name])


NODE_OF_KEY = {asset_key_of(name): name for name in GRAPH.nodes}


@dbt_assets(
    manifest=MANIFEST,
    project=project.dbt_project,
    dagster_dbt_translator=translator,
    partitions_def=run_dates,
    # one dbt invocation per run date: as_of_date is a single value
    backfill_policy=BackfillPolicy.multi_run(1),
    pool=WAREHOUSE_POOL,
    name="crm_dbt",
)
def crm_dbt(
    context: AssetExecutionContext, dbt: DbtCliResource, warehouse: Warehouse, gate: QualityGate
) -> Iterator[Any]:
    """`dbt build` of the selected models, seeds, snapshots and tests as of the partition date;
    on PostgreSQL and Spark `crm-tags build`'s write-audit-publish (orchestration.engine_runs)."""
    if engine_runs.on_engine():
        yield from engine_runs.build_on_engine(
            context, Path(warehouse.raw_dir), warehouse.published,
            Path(gate.runtime_dir) if gate.runtime_dir else None, NODE_OF_KEY)
        return
    as_of = context.partition_key
    context.log.info(f"candidate warehouse {warehouse.candidate}: {warehouse.prepare_candidate()}")
    _fail_on_missing_inputs(context, warehouse)
    target = engine_runs.run_target_dir(context.run.run_id, as_of)
    # the run date as CRM_AS_OF_DATE, not --vars: dbt then partially parses from the code
    # location's parse, which dagster-dbt copies into the run's target (macros/run_date.sql)
    with project.patched_environ({**warehouse.dbt_env(), "CRM_AS_OF_DATE": as_of}):
        invocation = dbt.cli(["build"], context=context, target_path=target)
    # A tag's rows and value shares are read from the candidate, which dbt holds open (DuckDB:
    # one process per file) until it exits: from the first tag model on, events wait for the end
    # of the build, so they still reach Dagster in dbt's order.
    held: list[Any] = []
    try:
        for event in invocation.stream():
            if held or _tag_model_of(context, event) is not None:
                held.append(event)
            else:
                yield event
    except Exception:
        yield from _with_tag_profiles(context, held, warehouse.candidate)
        raise
    yield from _with_tag_profiles(context, held, warehouse.candidate)


def _tag_model_of(context: AssetExecutionContext, event: Any) -> str | None:
    """The tag model an Output / AssetMaterialization event is about, if any."""
    if isinstance(event, Output):
        key = context.asset_key_for_output(event.output_name)
    elif isinstance(event, AssetMaterialization):
        key = event.asset_key
    else:
        return None
    name = key.path[-1]
    return name if name in GRAPH.tag_models else None


def _with_tag_profiles(
    context: AssetExecutionContext, events: list[Any], candidate: Path
) -> Iterator[Any]:
    """The events, each tag model's materialisation with its rows and value shares."""
    names = [n for e in events if (n := _tag_model_of(context, e)) is not None]
    if not names:
        yield from events
        return
    profiles: dict[str, dict[str, Any]] = {}
    try:
        with duckdb.connect(str(candidate), read_only=True) as con:
            for name in names:
                tag = CADENCES.tag_of_model(name)
                assert tag is not None  # a tag model has a catalog row (Cadences checks)
                relation = quoted_relation(GRAPH.nodes[name])
                profiles[name] = tag_profile(con, tag, relation, POPULATIONS)
    except duckdb.Error as error:
        context.log.warning(f"tag rows and value shares not recorded: {candidate}: {error}")
    health = _health_metadata(context, events, candidate)
    for event in events:
        name = _tag_model_of(context, event)
        if name in profiles:
            event = event.with_metadata({**event.metadata, **profiles[name]})
        elif health and _is_health_event(context, event):
            event = event.with_metadata({**event.metadata, **health})
        yield event


def _is_health_event(context: AssetExecutionContext, event: Any) -> bool:
    if isinstance(event, Output):
        return context.asset_key_for_output(event.output_name).path[-1] == HEALTH_MODEL
    return isinstance(event, AssetMaterialization) and event.asset_key.path[-1] == HEALTH_MODEL


def _health_metadata(context: AssetExecutionContext, events: list[Any], candidate: Path
                     ) -> dict[str, Any]:
    """marts.tag_health's figures and flags (warnings) when this run built it."""
    if HEALTH_MODEL not in GRAPH.nodes or not any(_is_health_event(context, e) for e in events):
        return {}
    try:
        with duckdb.connect(str(candidate), read_only=True) as con:
            return health_metadata(con, quoted_relation(GRAPH.nodes[HEALTH_MODEL]))
    except duckdb.Error as error:
        context.log.warning(f"tag health metadata not recorded: {candidate}: {error}")
        return {}


def _fail_on_missing_inputs(context: AssetExecutionContext, warehouse: Warehouse) -> None:
    """A subset run reads the tables it does not rebuild (other cadences' tags): say which are
    missing before dbt fails on the first of them."""
    selected = {key.path[-1] for key in context.selected_asset_keys}
    needed = {p for name in selected if name in GRAPH.parents for p in GRAPH.parents[name]}
    existing = warehouse.existing_relations()
    missing = sorted(
        f"{GRAPH.nodes[n]['schema']}.{GRAPH.nodes[n].get('alias') or n}"
        for n in needed - selected
        if (GRAPH.nodes[n]["schema"], GRAPH.nodes[n].get("alias") or n) not in existing
    )
    if missing:
        raise Failure(
            "The candidate warehouse lacks tables this run reads but does not rebuild: "
            + ", ".join(missing)
            + ". Run the `full_build` job once for this date (or `crm-tags build`), then retry.",
            metadata={"candidate": str(warehouse.candidate), "missing": missing},
        )


# --- the landing zone -------------------------------------------------------------------------


def _source_specs() -> list[AssetSpec]:
    specs = []
    for source in sorted(MANIFEST["sources"].values(), key=lambda s: s["unique_id"]):
        landing_path = source.get("meta", {}).get("landing_path")
        specs.append(
            AssetSpec(
                key=translator.get_asset_key(source),
                description=source.get("description") or f"Landing table {landing_path}",
                group_name="landing",
                kinds={"parquet"},
                metadata={"landing_path": landing_path or ""},
            )
        )
    return specs


SOURCE_SPECS = _source_specs()


@multi_observable_source_asset(specs=SOURCE_SPECS, name="landing_zone", can_subset=True)
def landing_zone(context: AssetExecutionContext, warehouse: Warehouse) -> Iterator[ObserveResult]:
    """Observe the delivery files of each raw table: a new or changed file is a new data version,
    which marks everything downstream as needing a refresh in the UI."""
    for spec in SOURCE_SPECS:
        if spec.key not in context.selected_asset_keys:
            continue
        folder = Path(warehouse.raw_dir) / str(spec.metadata["landing_path"])
        files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
        stats = [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files]
        version = hashlib.sha256(json.dumps(stats).encode()).hexdigest()[:16]
        metadata: dict[str, Any] = {
            "files": len(files),
            "bytes": sum(size for _, size, _ in stats),
            "folder": MetadataValue.path(str(folder)),
        }
        if stats:
            metadata["last_delivery"] = MetadataValue.timestamp(max(m for *_, m in stats) / 1e9)
        yield ObserveResult(
            asset_key=spec.key, data_version=DataVersion(version), metadata=metadata
        )


# --- write, audit, publish ---------------------------------------------------------------

MART_KEYS = [asset_key_of(name) for name in sorted(GRAPH.bi_marts)]
AUDIT_KEYS = [asset_key_of(name) for name in sorted(GRAPH.audit_models)]
CANDIDATE_KEY = AssetKey(["publish", "candidate"])
PUBLISHED_KEY = AssetKey(["publish", "warehouse"])


@asset(
    key=CANDIDATE_KEY,
    deps=MART_KEYS + AUDIT_KEYS,
    partitions_def=run_dates,
    backfill_policy=BackfillPolicy.multi_run(1),
    group_name="publish",
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
    description=(
        "The warehouse file this run built ("
        + md_code(".<name>.candidate.duckdb")
        + " next to "
        + md_code("$CRM_WAREHOUSE_PATH")
        + ", a copy of the published one): the quality gate's checkpoints validate it before "
        "anything is published."
    ),
)
def candidate_warehouse(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    refreshed = _refreshed_tags(context)
    if engine_runs.on_engine():  # built and gated by crm_dbt (crm-tags build's path)
        record = engine_runs.stored_result(context.run.run_id, context.partition_key)
        return MaterializeResult(metadata={
            **engine_runs.candidate_metadata(record, context.partition_key),
            "refreshed_tags": refreshed,
        })
    return MaterializeResult(
        metadata={
            "as_of_date": context.partition_key,
            "path": MetadataValue.path(str(warehouse.candidate)),
            "size_mb": round(warehouse.candidate.stat().st_size / 1e6, 1),
            "refreshed_tags": refreshed,
        }
    )


@asset(
    key=PUBLISHED_KEY,
    deps=[CANDIDATE_KEY],
    partitions_def=run_dates,
    backfill_policy=BackfillPolicy.multi_run(1),
    group_name="publish",
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
    freshness_policy=freshness_policy("daily"),
    description=(
        "The warehouse BI tools read ("
        + md_code("$CRM_WAREHOUSE_PATH")
        + "): the candidate, renamed over it once every blocking check (dbt tests, quality "
        "gate) has passed."
    ),
)
def published_warehouse(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    refreshed = set(_refreshed_tags(context))
    if engine_runs.on_engine():  # crm_dbt recorded the run and published (or refused)
        record = engine_runs.stored_result(context.run.run_id, context.partition_key)
        published: dict[str, Any] = engine_runs.published_metadata(record)
    else:
        # the gate's swing check compares the next run with this distribution
        now = dt.datetime.now(dt.UTC)
        record_published_run(
            warehouse.candidate, f"{context.partition_key}_{now:%Y%m%dT%H%M%S%f}"
        )
        path = warehouse.publish()
        published = {
            "path": MetadataValue.path(str(path)),
            "size_mb": round(path.stat().st_size / 1e6, 1),
        }
    rows = []
    for name in sorted(GRAPH.tag_models):
        tag = CADENCES.tag_of_model(name)
        code = tag.code if tag else name
        as_of = (
            context.partition_key
            if code in refreshed
            else _last_partition(context, asset_key_of(name))
        )
        mark = "yes" if code in refreshed else "no (kept)"
        rows.append(f"| {code} | {tag.cadence if tag else ''} | {mark} | {as_of} |")
    table = "| tag | cadence | refreshed by this run | tag table as of |\n|---|---|---|---|\n"
    return MaterializeResult(
        metadata={
            "as_of_date": context.partition_key,
            **published,
            "refreshed_tags": sorted(refreshed),
            "tags": MetadataValue.md(table + "\n".join(rows)),
        }
    )


def _refreshed_tags(context: AssetExecutionContext) -> list[str]:
    """Codes of the tag models materialised by this run (the UI's answer to "what ran")."""
    records = context.instance.get_records_for_run(
        run_id=context.run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION
    ).records
    names = {
        r.event_log_entry.dagster_event.asset_key.path[-1]
        for r in records
        if r.event_log_entry.dagster_event and r.event_log_entry.dagster_event.asset_key
    }
    return sorted(n.removeprefix("tag_") for n in names & GRAPH.tag_models)


def _last_partition(context: AssetExecutionContext, key: AssetKey) -> str:
    event = context.instance.get_latest_materialization_event(key)
    if event is None or event.dagster_event is None:
        return "never built by Dagster"
    return event.dagster_event.partition or "?"
