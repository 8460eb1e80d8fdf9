"""The Dagster code location: it loads, each schedule runs its catalog cadence, a daily run
materialises the daily tags and their checks in process, and a failing blocking check stops
publishing.

The code location is imported once per session with its dbt artifacts in a temp dir (the
fixture prepares the manifest itself: `prepare_if_dev()` acts only under `dagster dev`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from conftest import LandingZone, query, ts

from crm_tags import PROJECT_DIR

BOOTSTRAP_DATE = "2025-06-29"
AS_OF = "2025-06-30"
CADENCES = ["daily", "weekly", "monthly"]
BI_MARTS = {"customer_tags", "customer_profile", "contact_tags", "tag_catalog", "tag_value_labels"}


@pytest.fixture(scope="session")
def orch(tmp_path_factory) -> SimpleNamespace:
    """The code location's modules, imported with their dbt target dir outside target/."""
    target = os.environ.get("CRM_DAGSTER_DBT_TARGET") or str(tmp_path_factory.mktemp("dbt_target"))
    saved = os.environ.get("CRM_DAGSTER_DBT_TARGET")
    os.environ["CRM_DAGSTER_DBT_TARGET"] = target  # read once, at import
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    try:
        from orchestration import assets, definitions, project, resources, warehouse_state
    finally:
        if saved is None:
            os.environ.pop("CRM_DAGSTER_DBT_TARGET", None)
    return SimpleNamespace(
        defs=definitions.defs,
        build_definitions=definitions.build_definitions,
        quality_gate=definitions.quality_gate,
        assets=assets,
        project=project,
        resources=resources,
        warehouse_state=warehouse_state,
        CADENCES=assets.CADENCES,
    )


def manifest_graph(orch: SimpleNamespace) -> tuple[dict[str, Any], dict[str, set[str]]]:
    """Models/seeds by name and their parents, read straight from manifest.json."""
    manifest = json.loads(orch.project.dbt_project.manifest_path.read_text())
    nodes = {
        n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] in ("model", "seed")
    }
    names = {n["unique_id"]: name for name, n in nodes.items()}
    parents = {
        name: {names[p] for p in n.get("depends_on", {}).get("nodes", []) if p in names}
        for name, n in nodes.items()
    }
    return nodes, parents


def catalog_cadences() -> dict[str, str]:
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    return {code: tag["refresh_frequency"] for code, tag in project["vars"]["tag_catalog"].items()}


def job_keys(orch: SimpleNamespace, job: str) -> set[tuple[str, ...]]:
    return {tuple(k.path) for k in orch.defs.resolve_job_def(job).asset_layer.selected_asset_keys}


# --- loading ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_definitions_validate(orch, tmp_path):
    env = {
        **os.environ,
        "CRM_DAGSTER_DBT_TARGET": str(orch.project.DBT_TARGET_DIR),
        "DAGSTER_HOME": str(tmp_path),
    }
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("dagster")),
            "definitions",
            "validate",
            "-m",
            "orchestration.definitions",
            "-d",
            str(PROJECT_DIR),
        ],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


def test_asset_graph_runs_from_raw_sources_to_the_marts(orch):
    graph = orch.defs.resolve_asset_graph()
    keys = {tuple(k.path) for k in graph.get_all_asset_keys()}
    assert {
        ("raw_orders", "orders"),
        ("staging", "stg_orders__orders"),
        ("core", "fct_orders"),
        ("tags", "tag_purchase_frequency"),
        ("publish", "candidate"),
        ("publish", "warehouse"),
    } <= keys
    assert {("marts", m) for m in BI_MARTS} <= keys
    upstream = graph.get_ancestor_asset_keys(orch.assets.PUBLISHED_KEY)
    assert {("raw_orders", "orders"), ("raw_crm", "accounts"), ("marts", "customer_tags")} <= {
        tuple(k.path) for k in upstream
    }
    groups = {graph.get(k).group_name for k in graph.get_all_asset_keys()}
    assert {
        "landing",
        "reference",
        "staging",
        "intermediate",
        "core",
        "audit",
        "marts",
        "publish",
        "tags_basic",
        "tags_behaviour",
        "tags_value",
        "tags_preference",
        "tags_manual",
    } <= groups
    grade = graph.get(orch.assets.asset_key_of("tag_customer_grade"))
    assert grade.group_name == "tags_value" and grade.tags["cadence"] == "weekly"
    # dbt tests are asset checks; the gate's checkpoints are blocking checks on the candidate
    check_names = {(tuple(k.asset_key.path), k.name) for k in graph.asset_check_keys}
    assert (("marts", "customer_profile"), "unique_customer_profile_customer_id") in check_names
    gx = [k for k in graph.asset_check_keys if k.asset_key == orch.assets.CANDIDATE_KEY]
    assert gx and all(k.name.startswith("gx_") for k in gx)
    assert all(graph.get_check_spec(k).blocking for k in gx)


def test_every_tag_declares_freshness_from_its_cadence(orch):
    graph = orch.defs.resolve_asset_graph()
    period = {"daily": 1, "weekly": 7, "monthly": 31}
    cadences = catalog_cadences()
    tag_models = {n for n in manifest_graph(orch)[0] if n.startswith("tag_") and n[4:] in cadences}
    assert tag_models
    for model in tag_models:
        node = graph.get(orch.assets.asset_key_of(model))
        policy = node.freshness_policy
        days = period[cadences[model[4:]]]
        assert (
            dt.timedelta(days=days)
            < policy.fail_window.to_timedelta()
            <= dt.timedelta(days=days, hours=12)
        )
        checks = {k.name for k in graph.asset_check_keys if k.asset_key == node.key}
        assert "fresh_for_cadence" in checks


# --- what the UI shows: the catalog on each tag asset, clean descriptions, described checks -----


def test_the_catalog_reads_every_field_and_labelled_value():
    from crm_tags.catalog import CatalogValue, read_catalog

    catalog = read_catalog()
    grade = catalog["customer_grade"]
    assert (grade.label_zh, grade.label_en, grade.dimension, grade.level, grade.cadence) == (
        "客户等级", "Customer grade", "value", "account", "weekly",
    )
    assert grade.definition == "RFM grade from the order system only"
    assert grade.rule.startswith("R (<=30:5, 31-90:3, >90:1)")
    assert (grade.authoritative_source, grade.owner, grade.is_multi_valued) == (
        "orders", "sales-ops", False,
    )
    assert grade.source_tables == ("orders.orders", "orders.order_items", "orders.products")
    assert grade.values == (
        CatalogValue("vip", "VIP客户", "VIP"),
        CatalogValue("important", "重要客户", "Important"),
        CatalogValue("ordinary", "普通客户", "Ordinary"),
        CatalogValue("potential", "潜在客户", "Potential"),
    )
    assert catalog["decision_role"].level == "contact"
    assert catalog["browsing_interest"].is_multi_valued is True
    # the category tags: their values are the product categories (plus those listed)
    assert {c for c, t in catalog.items() if t.values_are_product_categories} == {
        "product_preference", "browsing_interest",
    }
    assert catalog["product_preference"].values == (CatalogValue("mixed", "多品类", "Mixed"),)


def test_a_tag_asset_shows_its_catalog_entry(orch):
    graph = orch.defs.resolve_asset_graph()
    grade = graph.get(orch.assets.asset_key_of("tag_customer_grade"))
    text = grade.description
    # a plain first line: the asset lists show it as text
    assert text.startswith(
        "Customer grade · 客户等级 (customer_grade): RFM grade from the order system only.\n"
    )
    for line in [
        "- **Rule:** R (<=30:5, 31-90:3, >90:1)",
        "- **Authoritative source:** orders",
        "- **Source tables:** `orders.orders`, `orders.order_items`, `orders.products`",
        "- **Refresh cadence:** weekly",
        "- **Owner:** sales-ops",
        "- **Dimension:** value",
        "- **Level:** account",
        "- **Multi-valued:** no",
        "| `vip` | VIP客户 | VIP |",
        "| `potential` | 潜在客户 | Potential |",
    ]:
        assert line in text, line
    assert grade.owners == ["team:sales-ops"]
    assert "categories present in the product data" in graph.get(
        orch.assets.asset_key_of("tag_product_preference")
    ).description
    assert "categories present" not in text


def test_catalog_and_dbt_text_is_escaped_only_where_markdown_would_swallow_it():
    from orchestration.descriptions import md_cell, md_text

    # the UI renders raw HTML: `<name>` would vanish as an unknown tag
    assert md_text("next to .<name>.candidate.duckdb") == "next to .&lt;name>.candidate.duckdb"
    assert md_text("employees < 100 small; <= 2 potential; > 500") == (
        "employees < 100 small; <= 2 potential; > 500"
    )
    assert md_cell("Food | beverage") == "Food \\| beverage"


def test_descriptions_are_clean_and_metadata_serializable(orch):
    import warnings

    from dagster._core.definitions.metadata import normalize_metadata

    graph = orch.defs.resolve_asset_graph()
    # dagster-dbt's own bookkeeping, which the UI hides (it keeps the objects for the runs)
    hidden_by_the_ui = {"dagster_dbt/manifest", "dagster_dbt/dagster_dbt_translator"}
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert "Raw SQL" not in (node.description or ""), key
        with warnings.catch_warnings():  # "arbitrary metadata values" is what we look for
            warnings.simplefilter("ignore", DeprecationWarning)
            shown = normalize_metadata(node.metadata, allow_invalid=True)
        unserializable = {k for k, v in shown.items() if "(unserializable)" in str(v.value)}
        assert unserializable <= hidden_by_the_ui, (key, unserializable)
    profile = graph.get(orch.assets.asset_key_of("customer_profile"))
    assert profile.description.startswith("One row per non-deleted customer")
    assert profile.metadata["raw_sql"].value.startswith("```sql\n")
    candidate = graph.get(orch.assets.CANDIDATE_KEY).description
    assert "(`.<name>.candidate.duckdb` next to `$CRM_WAREHOUSE_PATH`" in candidate


def test_every_dbt_test_check_is_described_and_singular_tests_are_checks(orch):
    graph = orch.defs.resolve_asset_graph()
    specs = {
        (k.asset_key.path[-1], k.name): graph.get_check_spec(k) for k in graph.asset_check_keys
    }
    assert all(spec.description for spec in specs.values()), [
        k for k, spec in specs.items() if not spec.description
    ]
    assert specs[("customer_profile", "unique_customer_profile_customer_id")].description == (
        "`customer_id` is unique: no value appears twice."
    )
    assert specs[("customer_tags", "not_null_customer_tags_tag_value")].description == (
        "`tag_value` is never null."
    )
    assert specs[
        ("tag_value_definitions",
         "relationships_tag_value_definitions_tag_code__tag_code__ref_tag_definitions_")
    ].description == "Every `tag_code` exists in `tag_definitions.tag_code`."
    assert specs[("contact_tags", "unique_combination_contact_tags_contact_id__tag_code")].description == (
        "Each combination of `contact_id`, `tag_code` appears at most once."
    )
    # singular tests (tests/dbt/*.sql) are checks on the asset they test, described by their
    # leading comment
    singular = {
        ("customer_tags", "assert_tag_rows_carry_evidence"),
        ("customer_tags", "assert_single_valued_tags_have_one_value"),
    }
    assert singular <= set(specs)
    assert specs[("customer_tags", "assert_tag_rows_carry_evidence")].description.startswith(
        "Every tag row in the marts carries its evidence"
    )


# --- a first start on an existing warehouse: its state is recorded, freshness is true ----------

TODAY = dt.date(2025, 6, 30)
WEEKLY_RUN = dt.date(2025, 6, 27)
MONTHLY_RUN = dt.date(2025, 5, 21)  # 40 days old: stale for a monthly tag


def make_published_warehouse(orch: SimpleNamespace, path: Path, empty: set[str] = frozenset(),
                             dates: dict[str, dt.date] | None = None) -> None:
    """A hand-made published warehouse: every tag table (daily tags as of TODAY, weekly ones as
    of WEEKLY_RUN, monthly ones as of MONTHLY_RUN, `empty` ones without rows), the customers
    and contacts, the marts' customer_profile, the monthly-only LTV summary and the audit."""
    import duckdb

    graph, cadences = orch.assets.GRAPH, orch.CADENCES
    run_date = {"daily": TODAY, "weekly": WEEKLY_RUN, "monthly": MONTHLY_RUN}

    def table(name: str) -> str:
        node = graph.nodes[name]
        return f'"{node["schema"]}"."{node.get("alias") or name}"'

    with duckdb.connect(str(path)) as con:
        for schema in {n["schema"] for n in graph.nodes.values()} | {"audit"}:
            con.execute(f'create schema if not exists "{schema}"')
        con.execute(f"create table {table('dim_customers')} as select * from (values "
                    "('c1', false), ('c2', false), ('c3', false), ('c4', true), ('c5', false)) "
                    "as t(customer_id, is_deleted)")
        con.execute(f"create table {table('dim_contacts')} as select * from (values "
                    "('k1', 'c1'), ('k2', 'c2')) as t(contact_id, customer_id)")
        con.execute(f"create table {table('dim_product_categories')} as select * from (values "
                    "('electronics', '电子产品', 'Electronics', 1), ('books', '图书', 'Books', 2)) "
                    "as t(category_code, label_zh, label_en, sort_order)")
        con.execute(f"create table {table('customer_profile')} as select 'c1' as customer_id")
        con.execute(f"create table {table('int_customers_ltv_summary')} as select 'c1' as customer_id")
        con.execute(f"create table {table('reconciliation')} as select date '{TODAY}' as as_of_date")
        con.execute("create table audit.published_run as select 'run-1' as run_id, "
                    f"date '{TODAY}' as as_of_date, timestamp '{TODAY} 03:00:00' as published_at")
        for model in sorted(graph.tag_models):
            tag = cadences.tag_of_model(model)
            as_of = (dates or {}).get(model, run_date[tag.cadence])
            if model == "tag_purchase_frequency":
                as_of = TODAY  # daily (and refreshed by the weekly job too)
            first = tag.values[0].code if tag.values else "x"
            rows = [] if model in empty else [("c1", first), ("c2", first), ("c4", first)]
            if model == "tag_customer_grade" and model not in empty:
                rows = [("c1", "vip"), ("c2", "vip"), ("c3", "potential"), ("c4", "vip")]
            con.execute(f"create table {table(model)} (contact_id varchar, customer_id varchar, "
                        "tag_code varchar, tag_value varchar, evidence varchar, as_of_date date)")
            for customer, value in rows:
                contact = {"c1": "k1", "c2": "k2"}.get(customer)
                con.execute(f"insert into {table(model)} values (?, ?, ?, ?, 'test', ?)",
                            [contact, customer, tag.code, value, as_of])


class StateSensor:
    """Ticks of warehouse_state_sensor on a temp instance, applied as the daemon applies them."""

    def __init__(self, orch: SimpleNamespace, root: Path):
        from dagster import DagsterInstance

        from orchestration.resources import Warehouse

        self.orch = orch
        self.published = root / "published.duckdb"
        (root / "home").mkdir()
        self.instance = DagsterInstance.local_temp(str(root / "home"))
        self.defs = orch.build_definitions(
            warehouse=Warehouse(
                raw_dir=str(root / "raw"),
                published_path=str(self.published),
                candidate_path=str(root / "candidate.duckdb"),
            )
        )
        self.cursor: str | None = None

    def tick(self) -> Any:
        from dagster import build_sensor_context

        sensor = self.defs.resolve_sensor_def("warehouse_state_sensor")
        context = build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            repository_def=self.defs.get_repository_def(),
            resources={"warehouse": self.defs.resources["warehouse"]},
        )
        data = sensor.evaluate_tick(context)
        for event in data.asset_events:
            self.instance.report_runless_asset_event(event)
        self.cursor = data.cursor
        return data

    def latest(self, model: str) -> Any:
        key = self.orch.assets.asset_key_of(model)
        return self.instance.get_latest_materialization_event(key)


@pytest.fixture
def state_sensor(orch, tmp_path, monkeypatch):
    from orchestration import resources

    monkeypatch.setattr(resources, "today", lambda: TODAY)
    sensor = StateSensor(orch, tmp_path)
    yield sensor
    sensor.instance.dispose()


def materializations(data: Any) -> dict[str, Any]:
    from dagster import AssetMaterialization

    return {
        "/".join(e.asset_key.path): e for e in data.asset_events
        if isinstance(e, AssetMaterialization)
    }


def check_evaluations(data: Any) -> dict[str, Any]:
    from dagster import AssetCheckEvaluation

    return {
        e.asset_key.path[-1]: e for e in data.asset_events if isinstance(e, AssetCheckEvaluation)
    }


def test_a_first_start_records_what_the_published_warehouse_holds(orch, state_sensor):
    make_published_warehouse(orch, state_sensor.published, empty={"tag_complaint_risk"})
    first = materializations(state_sensor.tick())
    graph = orch.assets.GRAPH
    expected = {
        **{f"tags/{m}": orch.CADENCES.tag_of_model(m).cadence for m in graph.tag_models},
        "core/dim_customers": "today", "core/dim_contacts": "today",
        "core/dim_product_categories": "today",
        "marts/customer_profile": "today", "audit/reconciliation": "today",
        "intermediate/int_customers_ltv_summary": "monthly", "publish/warehouse": "today",
        "tags/tag_purchase_frequency": "today",
    }
    dates = {"today": TODAY, "daily": TODAY, "weekly": WEEKLY_RUN, "monthly": MONTHLY_RUN}
    assert {k: e.partition for k, e in first.items()} == {
        k: dates[v].isoformat() for k, v in expected.items()
    }
    # an empty tag table takes the date of its cadence's other tags (built by the same job)
    complaint = first["tags/tag_complaint_risk"].metadata
    assert "is empty: the date of the other weekly tags" in complaint["run_date_from"].value
    assert complaint["dagster/row_count"].value == 0
    # a model only the monthly tags read was built by the last monthly run
    assert "monthly" in first["intermediate/int_customers_ltv_summary"].metadata[
        "run_date_from"].value
    grade = first["tags/tag_customer_grade"].metadata
    assert grade["recorded_from"].value.startswith("read from the published warehouse")
    assert grade["warehouse_run_id"].value == "run-1"
    # rows of the table; shares of the 4 non-deleted customers (c4 is deleted)
    assert grade["dagster/row_count"].value == 4
    assert (grade["customers"].value, grade["customers_tagged"].value) == (4, 3)
    assert [
        (r.data["value"], r.data["label_zh"], r.data["holders"], r.data["share"])
        for r in grade["value_shares"].value.records
    ] == [
        ("vip", "VIP客户", 2, 0.5), ("important", "重要客户", 0, 0.0),
        ("ordinary", "普通客户", 0, 0.0), ("potential", "潜在客户", 1, 0.25),
    ]
    assert grade["share vip"].value == 0.5
    # a category tag's values: the categories present in the product data, then those listed
    preference = first["tags/tag_product_preference"].metadata["value_shares"].value.records
    assert [(r.data["value"], r.data["label_zh"], r.data["share"]) for r in preference] == [
        ("electronics", "电子产品", 0.0), ("books", "图书", 0.0), ("mixed", "多品类", 0.5),
    ]
    role = first["tags/tag_decision_role"].metadata  # contact level: shares of the contacts
    assert (role["contacts"].value, role["contacts_tagged"].value) == (2, 2)


def test_freshness_is_evaluated_on_the_recorded_state_at_the_next_tick(orch, state_sensor):
    make_published_warehouse(orch, state_sensor.published)
    first = state_sensor.tick()
    assert check_evaluations(first) == {}  # recorded in this tick: evaluated at the next one
    second = check_evaluations(state_sensor.tick())
    assert set(second) == orch.assets.GRAPH.tag_models
    stale = {m for m, e in second.items() if not e.passed}
    monthly = {m for m in orch.CADENCES.graph.tag_models
               if orch.CADENCES.tag_of_model(m).cadence == "monthly"}
    assert stale == monthly  # 40 days old; the weekly tags (3 days) and daily ones are fresh
    recency = second["tag_recency"]
    assert recency.description == f"fresh: built as of {TODAY}"
    # aimed at the recorded materialisation, so the UI shows it as the latest result
    assert recency.target_materialization_data.storage_id == state_sensor.instance.get_asset_records(
        [orch.assets.asset_key_of("tag_recency")]
    )[0].asset_entry.last_materialization_record.storage_id
    third = state_sensor.tick()
    assert third.asset_events == []  # nothing new: nothing recorded or evaluated again


def test_a_newer_dagster_record_is_never_overwritten(orch, state_sensor):
    from dagster import AssetMaterialization

    make_published_warehouse(orch, state_sensor.published)
    recency = orch.assets.asset_key_of("tag_recency")
    state_sensor.instance.report_runless_asset_event(
        AssetMaterialization(recency, partition="2025-07-01")
    )
    first = materializations(state_sensor.tick())
    assert "tags/tag_recency" not in first and "tags/tag_industry" in first
    assert state_sensor.latest("tag_recency").dagster_event.partition == "2025-07-01"
    # a rebuilt warehouse file is read again: only what it holds newer than the records
    state_sensor.published.unlink()
    make_published_warehouse(orch, state_sensor.published,
                             dates={"tag_customer_grade": dt.date(2025, 6, 29)})
    again = materializations(state_sensor.tick())
    assert {k: e.partition for k, e in again.items()} == {"tags/tag_customer_grade": "2025-06-29"}


def test_a_run_date_that_is_no_partition_is_not_recorded(orch, state_sensor):
    make_published_warehouse(orch, state_sensor.published,
                             dates={"tag_manual": dt.date(2023, 12, 31)})
    first = materializations(state_sensor.tick())
    assert "tags/tag_manual" not in first and "tags/tag_industry" in first
    assert state_sensor.latest("tag_manual") is None


def test_no_warehouse_records_nothing(orch, state_sensor):
    data = state_sensor.tick()
    assert materializations(data) == {}
    # the checks say "never built" (nothing holds the tags)
    assert {e.passed for e in check_evaluations(data).values()} == {False}


# --- schedules follow the catalog -------------------------------------------------------------


@pytest.mark.parametrize("cadence", CADENCES)
def test_each_schedule_selects_exactly_its_catalog_cadence(orch, cadence):
    nodes, parents = manifest_graph(orch)
    cadences = catalog_cadences()
    tag_models = {n for n in nodes if n.startswith("tag_") and n[4:] in cadences}
    own = {f"tag_{code}" for code, freq in cadences.items() if freq == cadence} & tag_models

    def ancestors(names: set[str]) -> set[str]:
        seen, todo = set(), list(names)
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(parents[name])
        return seen

    keys = job_keys(orch, f"{cadence}_tags")
    tags_in_job = {k[-1] for k in keys if k[0] == "tags"}
    # the cadence's tags, plus tags they are computed from (customer_grade reads purchase_frequency)
    assert tags_in_job == own | (ancestors(own) & tag_models)
    assert own, f"no {cadence} tag in the catalog has a model"
    # everything the tags need upstream, then the marts, the audit and publish
    assert {k[-1] for k in keys} >= ancestors(own)
    assert {("marts", m) for m in BI_MARTS} <= keys
    assert {("publish", "candidate"), ("publish", "warehouse"), ("audit", "reconciliation")} <= keys

    schedule = orch.defs.get_schedule_def(f"{cadence}_tags_schedule")
    assert schedule.job_name == f"{cadence}_tags"
    assert schedule.default_status.value == "RUNNING"
    _, _, day_of_month, _, day_of_week = schedule.cron_schedule.split()
    assert (day_of_month, day_of_week) == {
        "daily": ("*", "*"),
        "weekly": ("*", "1"),
        "monthly": ("1", "*"),
    }[cadence]


def test_every_computed_tag_is_scheduled_once_by_its_own_cadence(orch):
    cadences = catalog_cadences()
    scheduled: dict[str, list[str]] = {}
    for cadence in CADENCES:
        for model in orch.CADENCES.tag_models(cadence):
            scheduled.setdefault(model, []).append(cadence)
    tag_models = {n for n in manifest_graph(orch)[0] if n.startswith("tag_") and n[4:] in cadences}
    assert scheduled == {m: [cadences[m[4:]]] for m in tag_models}


def test_a_catalog_change_moves_the_tag_without_python(orch, tmp_path):
    from crm_tags.catalog import Cadences, read_catalog

    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))
    project["vars"]["tag_catalog"]["recency"]["refresh_frequency"] = "weekly"
    (tmp_path / "dbt_project.yml").write_text(yaml.safe_dump(project), encoding="utf-8")
    moved = Cadences(read_catalog(tmp_path / "dbt_project.yml"), orch.CADENCES.graph)
    assert "tag_recency" in moved.tag_models("weekly")
    assert "tag_recency" not in moved.models("daily")

    project["vars"]["tag_catalog"]["recency"]["refresh_frequency"] = "hourly"
    (tmp_path / "bad.yml").write_text(yaml.safe_dump(project), encoding="utf-8")
    with pytest.raises(ValueError, match="recency.refresh_frequency is 'hourly'"):
        read_catalog(tmp_path / "bad.yml")


@pytest.mark.parametrize(
    "cadence, tick, run_date",
    [
        ("daily", dt.datetime(2025, 6, 30, 2, 0), "2025-06-30"),
        ("weekly", dt.datetime(2025, 6, 30, 3, 0), "2025-06-30"),  # a Monday
        ("monthly", dt.datetime(2025, 7, 1, 4, 0), "2025-07-01"),
    ],
)
def test_the_tick_date_is_the_run_date(orch, cadence, tick, run_date):
    from dagster import build_schedule_context

    schedule = orch.defs.get_schedule_def(f"{cadence}_tags_schedule")
    tick = tick.replace(tzinfo=orch.resources.zone())
    context = build_schedule_context(
        scheduled_execution_time=tick, repository_def=orch.defs.get_repository_def()
    )
    data = schedule.evaluate_tick(context)
    [request] = data.run_requests
    assert request.partition_key == run_date


# --- in-process runs on a hand-made landing zone ------------------------------------------------


def write_landing(landing: LandingZone) -> None:
    """a1: a B2B customer with a monthly purchase for a year; a2: a consumer who never bought."""

    def t(days: int, hour: int = 10) -> dt.datetime:
        return ts(BOOTSTRAP_DATE, days, hour)

    landing.deliver(
        "crm/accounts",
        [
            {
                "account_id": "a1",
                "account_name": "精工机械",
                "customer_type": "B2B",
                "industry": "制造业",
                "employee_count": 80,
                "province": "浙江省",
                "updated_at": t(400),
                "is_deleted": False,
            },
            {
                "account_id": "a2",
                "account_name": "王芳",
                "customer_type": "B2C",
                "province": "广东",
                "updated_at": t(400),
                "is_deleted": False,
            },
        ],
    )
    landing.deliver(
        "crm/contacts",
        [
            {
                "contact_id": "k1",
                "account_id": "a1",
                "email": "boss@a1.cn",
                "decision_role": "DM",
                "updated_at": t(100),
            },
        ],
    )
    landing.deliver(
        "orders/products",
        [
            {
                "product_id": "p1",
                "product_name": "笔记本电脑",
                "category": "电子产品",
                "list_price": Decimal("5000.00"),
            },
        ],
    )
    orders = [
        {
            "order_id": f"o1_{i:02d}",
            "account_id": "a1",
            "order_ts": t(30 * i + 1),
            "status": "completed",
            "sales_channel": "online",
            "_ingested_at": t(30 * i + 1, 12),
        }
        for i in range(12)
    ]
    landing.deliver("orders/orders", orders)
    landing.deliver(
        "orders/order_items",
        [
            {
                "order_id": o["order_id"],
                "line_no": 1,
                "product_id": "p1",
                "quantity": 1,
                "unit_price": Decimal("5000.00"),
                "discount_amount": Decimal("0.00"),
                "unit_cost": Decimal("3000.00"),
            }
            for o in orders
        ],
    )
    landing.deliver(
        "support/tickets",
        [
            {
                "ticket_id": "t1",
                "account_id": "a1",
                "channel": "phone",
                "ticket_type": "inquiry",
                "opened_at": t(10),
                "satisfaction_score": 5,
            },
        ],
    )
    landing.deliver(
        "crm/manual_tags",
        [
            {
                "account_id": "a1",
                "tag_code": "key_account",
                "action": "add",
                "operator": "li",
                "operated_at": t(50),
            },
        ],
    )


def deliver_first_purchase_of_a2(landing: LandingZone) -> None:
    """Lands after the bootstrap: a2 buys on the run date."""
    landing.deliver(
        "orders/orders",
        [
            {
                "order_id": "o2_1",
                "account_id": "a2",
                "order_ts": ts(AS_OF, 0, 9),
                "status": "paid",
                "sales_channel": "online",
                "_ingested_at": ts(AS_OF, 0, 11),
            },
        ],
    )
    landing.deliver(
        "orders/order_items",
        [
            {
                "order_id": "o2_1",
                "line_no": 1,
                "product_id": "p1",
                "quantity": 1,
                "unit_price": Decimal("5000.00"),
                "discount_amount": Decimal("0.00"),
                "unit_cost": Decimal("3000.00"),
            },
        ],
    )


GATE_CALLS: list[tuple[str, list[str]]] = []


def stub_gates(orch: SimpleNamespace) -> tuple[Any, Any]:
    """A passing and a failing gate: the GX suites themselves are the quality helper's tests."""
    from orchestration.quality_checks import Finding, GateOutcome, QualityGate, Suite

    class PassingGate(QualityGate):
        def run(self, warehouse: Path, checkpoints: list[str]) -> GateOutcome:
            GATE_CALLS.append((str(warehouse), checkpoints))
            return GateOutcome(
                suites=[Suite(c, f"{c}.stub", 3) for c in checkpoints]
            )

    class FailingGate(QualityGate):
        def run(self, warehouse: Path, checkpoints: list[str]) -> GateOutcome:
            checkpoint = (checkpoints or ["gate"])[0]
            finding = Finding(
                checkpoint,
                "marts.customer_tags",
                "A single-valued tag has two values",
                "1 of 14 rows",
                ("a1: purchase_frequency",),
            )
            return GateOutcome(
                suites=[Suite(checkpoint, "marts.customer_tags", 3, 1)],
                failures=[finding],
            )

    return PassingGate(), FailingGate()


class Runs:
    def __init__(self, orch: SimpleNamespace, root: Path):
        from dagster import DagsterInstance

        from orchestration.resources import Warehouse

        self.orch = orch
        self.root = root
        self.landing = LandingZone(root / "raw")
        self.warehouse = Warehouse(
            raw_dir=str(root / "raw"),
            published_path=str(root / "published.duckdb"),
            candidate_path=str(root / "candidate.duckdb"),
        )
        (root / "dagster_home").mkdir()
        self.instance = DagsterInstance.local_temp(str(root / "dagster_home"))
        self.passing, self.failing = stub_gates(orch)

    def run(self, job: str, partition: str, gate: Any = None, selection: list | None = None) -> Any:
        defs = self.orch.build_definitions(warehouse=self.warehouse, gate=gate or self.passing)
        return defs.resolve_job_def(job).execute_in_process(
            partition_key=partition,
            instance=self.instance,
            raise_on_error=False,
            asset_selection=selection,
        )


@pytest.fixture(scope="module")
def runs(orch, tmp_path_factory):
    """Publish all the marts read as of the day before (plain dbt), then run the daily job."""
    from crm_tags.build import run_dbt
    from orchestration import resources

    runs = Runs(orch, tmp_path_factory.mktemp("dagster_runs"))
    write_landing(runs.landing)
    graph = orch.assets.GRAPH
    # what the marts read, not tags nobody reads yet (tag_ltv is fitted on real populations only)
    bootstrap = sorted(graph.ancestors(graph.bi_marts | graph.audit_models))
    # the state the daily run starts from, without dbt's data tests: they check the data, and
    # the daily run under test runs them as its asset checks (test_daily_run_checks_its_tags...)
    run_dbt(
        ["build", "--select", *bootstrap, "--exclude-resource-type", "unit_test",
         "--exclude-resource-type", "test"],
        runs.landing.root,
        runs.warehouse.published,
        BOOTSTRAP_DATE,
        target_path=runs.root / "bootstrap_target",
        quiet=True,
    )
    deliver_first_purchase_of_a2(runs.landing)
    GATE_CALLS.clear()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(resources, "today", lambda: dt.date.fromisoformat(AS_OF))
        runs.daily = runs.run("daily_tags", AS_OF)
    yield runs
    runs.instance.dispose()


def materialized(result: Any) -> set[tuple[str, ...]]:
    return {tuple(e.asset_key.path) for e in result.get_asset_materialization_events()}


def tags_of(warehouse: Path, customer_id: str) -> dict[str, str]:
    return dict(
        query(
            warehouse,
            f"""
        select tag_code, string_agg(tag_value, ',' order by tag_value) from marts.customer_tags
        where customer_id = '{customer_id}' group by tag_code
    """,
        )
    )


@pytest.mark.slow
def test_daily_run_materialises_the_daily_tags_and_publishes(orch, runs):
    assert runs.daily.success, runs.daily.get_failed_step_keys()
    cadences = catalog_cadences()
    built_tags = {k[-1] for k in materialized(runs.daily) if k[0] == "tags"}
    daily = {
        f"tag_{c}" for c, f in cadences.items() if f == "daily"
    } & orch.CADENCES.graph.tag_models
    assert built_tags == daily
    assert {("marts", m) for m in BI_MARTS} | {
        ("publish", "candidate"),
        ("publish", "warehouse"),
    } <= materialized(runs.daily)

    published = runs.warehouse.published
    a2 = tags_of(published, "a2")
    # the daily tags see a2's first purchase ...
    assert (
        a2["lifecycle_stage"] == "new"
        and a2["recency"] == "within_30d"
        and a2["purchase_frequency"] == "low"
    )
    # ... the weekly grade keeps the value of its last (bootstrap) run: never purchased
    assert a2["customer_grade"] == "potential"
    assert tags_of(published, "a1")["customer_grade"] == "vip"
    # each tag says when it was computed: the daily tags today, the weekly and monthly ones at
    # their last (bootstrap) run
    assert dict(query(published, """
        select refresh_frequency, string_agg(distinct cast(as_of_date as varchar), ',')
        from marts.customer_tags group by refresh_frequency""")) == {
        "daily": AS_OF, "weekly": BOOTSTRAP_DATE, "monthly": BOOTSTRAP_DATE,
    }

    [publish] = [
        e
        for e in runs.daily.get_asset_materialization_events()
        if tuple(e.asset_key.path) == ("publish", "warehouse")
    ]
    metadata = publish.event_specific_data.materialization.metadata
    assert sorted(metadata["refreshed_tags"].value) == sorted(t[4:] for t in daily)


@pytest.mark.slow
def test_daily_run_checks_its_tags_and_gates_the_candidate(orch, runs):
    evaluations = runs.daily.get_asset_check_evaluations()
    by_asset: dict[tuple[str, ...], list[Any]] = {}
    for e in evaluations:
        by_asset.setdefault(tuple(e.asset_key.path), []).append(e)
    for tag in {k for k in materialized(runs.daily) if k[0] == "tags"}:
        names = {e.check_name for e in by_asset[tag]}
        assert "fresh_for_cadence" in names, tag
    # the tag-health checks warn about the catalog (behaviour's 7 tags): never a failure
    assert all(e.passed or e.check_name.startswith("health_") for e in evaluations), [
        (e.asset_key, e.check_name) for e in evaluations if not e.passed
    ]
    assert any(e.check_name.startswith("unique_") for e in by_asset[("marts", "customer_profile")])
    gx = {e.check_name for e in by_asset[("publish", "candidate")]}
    assert gx == {k.name for k in orch.quality_gate.check_keys}
    # one gate run, on the candidate file, for every checkpoint
    assert [(path, sorted(cps)) for path, cps in GATE_CALLS] == [
        (str(runs.warehouse.candidate), sorted(n.removeprefix("gx_") for n in gx if n != "gx_gate"))
    ]


@pytest.mark.slow
def test_a_failing_blocking_check_stops_publishing(orch, runs):
    published = runs.warehouse.published
    before = published.read_bytes()
    assets = orch.assets
    marts_only = [assets.asset_key_of(m) for m in sorted(BI_MARTS)] + [
        assets.CANDIDATE_KEY,
        assets.PUBLISHED_KEY,
    ]
    result = runs.run("daily_tags", "2025-07-01", gate=runs.failing, selection=marts_only)

    assert ("publish", "candidate") in materialized(result)  # written and audited ...
    assert ("publish", "warehouse") not in materialized(result)  # ... never published
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert failed and all(e.severity.value == "ERROR" for e in failed)
    assert tuple(failed[0].asset_key.path) == ("publish", "candidate")
    assert published.read_bytes() == before
    # the candidate did get the new run date; BI tools still read the last good one
    assert query(runs.warehouse.candidate, "select max(as_of_date) from marts.customer_profile") == [
        (dt.date(2025, 7, 1),)
    ]
    assert query(published, "select max(as_of_date) from marts.customer_profile") == [
        (dt.date(2025, 6, 30),)
    ]


@pytest.mark.slow
def test_a_tag_materialisation_records_its_rows_and_value_shares(orch, runs):
    """Read from the candidate once dbt has built it: a1 (bought monthly for a year) and a2
    (first purchase on the run date) are both customers."""
    [lifecycle] = [
        e.event_specific_data.materialization
        for e in runs.daily.get_asset_materialization_events()
        if tuple(e.asset_key.path) == ("tags", "tag_lifecycle_stage")
    ]
    metadata = lifecycle.metadata
    assert metadata["dagster/row_count"].value == 2
    assert metadata["as_of_date"].value == AS_OF
    assert (metadata["customers"].value, metadata["customers_tagged"].value) == (2, 2)
    shares = {r.data["value"]: (r.data["holders"], r.data["share"])
              for r in metadata["value_shares"].value.records}
    assert shares == {"prospect": (0, 0.0), "new": (1, 0.5), "active": (1, 0.5),
                      "at_risk": (0, 0.0), "churned": (0, 0.0)}
    assert metadata["share new"].value == 0.5
    # the events still reach Dagster in dbt's order: each tag's checks after its materialisation
    keys = [tuple(e.asset_key.path) for e in runs.daily.get_asset_materialization_events()]
    assert keys.index(("tags", "tag_lifecycle_stage")) < keys.index(("marts", "customer_tags"))


@pytest.mark.slow
def test_the_daily_run_writes_only_its_tags_into_the_history(orch, runs):
    """Issue 19: history and transitions are assets of every cadence's job, a Dagster backfill
    runs one date per run (each date written into the history), and a weekly tag's history
    changes only on the runs that compute it."""
    history_keys = {("marts", m) for m in
                    ("customer_tag_history", "contact_tag_history", "tag_transitions", "tag_runs")}
    for cadence in CADENCES:
        assert history_keys <= job_keys(orch, f"{cadence}_tags"), cadence
    for _, name in history_keys:
        policy = orch.defs.get_assets_def(orch.assets.asset_key_of(name)).backfill_policy
        assert policy is not None and policy.max_partitions_per_run == 1, name
    assert ("marts", "customer_tag_history") in materialized(runs.daily)

    published = runs.warehouse.published
    boot, day = dt.date.fromisoformat(BOOTSTRAP_DATE), dt.date.fromisoformat(AS_OF)
    # a2's first purchase moves the daily lifecycle stage on the daily run ...
    assert query(published, """
        select tag_value, valid_from, valid_to from marts.customer_tag_history
        where customer_id = 'a2' and tag_code = 'lifecycle_stage' order by valid_from""") == [
        ("prospect", boot, day), ("new", day, None)]
    # ... the weekly grade keeps its bootstrap period: the daily run did not compute it
    assert query(published, """
        select tag_value, valid_from, valid_to from marts.customer_tag_history
        where customer_id = 'a2' and tag_code = 'customer_grade'""") == [("potential", boot, None)]
    runs_on = dict(query(published, """
        select as_of_date, list(tag_code order by tag_code) from marts.tag_runs group by all"""))
    refreshed = sorted(t.removeprefix("tag_") for t in orch.CADENCES.refreshed_tags("daily"))
    assert runs_on[day] == refreshed
    assert "customer_grade" in runs_on[boot] and "customer_grade" not in runs_on[day]
    assert query(published, """
        select from_value, to_value, customer_count from marts.tag_transitions
        where tag_code = 'lifecycle_stage' and as_of_date = date '2025-06-30'""") == [
        ("prospect", "new", 1)]


@pytest.mark.slow
def test_a_warehouse_built_outside_dagster_is_recorded_and_stale_tags_turn_red(
    orch, runs, monkeypatch
):
    """The published warehouse of `runs`: weekly and monthly tags built by plain dbt (as `make
    demo` does) on BOOTSTRAP_DATE, daily tags by the Dagster daily run on AS_OF."""
    from dagster import build_sensor_context

    from orchestration import freshness, resources

    recency = orch.assets.asset_key_of("tag_recency")  # daily, built by Dagster 2025-06-30
    grade = orch.assets.asset_key_of("tag_customer_grade")  # weekly, built by plain dbt
    monkeypatch.setattr(resources, "today", lambda: dt.date(2025, 7, 1))
    assert freshness.evaluate(runs.instance, recency, "daily")[0] is True
    monkeypatch.setattr(resources, "today", lambda: dt.date(2025, 7, 2))
    passed, metadata = freshness.evaluate(runs.instance, recency, "daily")
    assert passed is False and metadata["age_days"] == 2
    assert freshness.evaluate(runs.instance, grade, "weekly")[1]["as_of_date"] == "never built"

    defs = orch.build_definitions(warehouse=runs.warehouse, gate=runs.passing)
    sensor = defs.resolve_sensor_def("warehouse_state_sensor")

    def tick(cursor: str | None) -> Any:
        data = sensor.evaluate_tick(build_sensor_context(
            instance=runs.instance, cursor=cursor, repository_def=defs.get_repository_def(),
            resources={"warehouse": defs.resources["warehouse"]},
        ))
        for event in data.asset_events:
            runs.instance.report_runless_asset_event(event)
        return data

    first = tick(None)
    recorded = {e.asset_key.path[-1]: e.partition for e in materializations(first).values()}
    # the tags Dagster did not build, at their run date; what Dagster built is left alone
    assert recorded["tag_customer_grade"] == BOOTSTRAP_DATE
    assert "tag_recency" not in recorded and "customer_profile" not in recorded
    # a model only the monthly tags read: the date of the monthly tags' tables
    assert recorded["int_customers_ltv_summary"] == recorded["tag_ltv"] == BOOTSTRAP_DATE
    # recency passed at the run; stale now: re-evaluated without a run
    assert check_evaluations(first)["tag_recency"].passed is False
    second = check_evaluations(tick(first.cursor))
    assert second["tag_customer_grade"].passed is True  # built 2025-06-29, weekly
    assert second["tag_customer_grade"].metadata["age_days"].value == 3
