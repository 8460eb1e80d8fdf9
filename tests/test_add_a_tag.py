"""Adding a tag touches exactly what docs/adding-a-tag.md says: the catalog (dbt_project.yml
vars.tag_catalog), the thresholds seed, the tag's model and the model's YAML with its unit tests.

A copy of the project gets a new tag in those four places only; dbt builds it (its unit test
included) into every mart, and the Dagster cadence job of its refresh frequency picks it up.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml
from conftest import LandingZone, copy_project, query
from test_warehouse import AS_OF, write_scenario

from crm_tags.build import build
from crm_tags.catalog import Cadences, DbtGraph, read_catalog

pytestmark = pytest.mark.slow

NEW_TAG = {
    "dimension": "value",
    "tag_level": "account",
    "is_multi_valued": False,
    "label_zh": "客单价",
    "label_en": "Basket size",
    "definition": "Mean net sales per purchase in the trailing 365-day window",
    "authoritative_source": "orders",
    "source_tables": ["orders.orders", "orders.order_items", "orders.products"],
    "rule": ">= 1000 per purchase large; else small; no purchase in the window -> no tag",
    "refresh_frequency": "weekly",
    "owner": "sales-ops",
    "values": {"large": ["大客单", "Large basket"], "small": ["小客单", "Small basket"]},
}

MODEL_SQL = """\
-- basket_size: mean net sales per purchase in the 365-day window.
with

metrics as (
    select * from {{ ref('int_customer_order_metrics') }} where purchases_365d > 0
),

final as (
    select
        customer_id,
        'basket_size' as tag_code,
        case
            when net_sales_365d >= {{ tag_param('basket_size', 'large_min_per_purchase') }} * purchases_365d
                then 'large'
            else 'small'
        end as tag_value,
        'net_sales_365d = ' || net_sales_365d || ', purchases_365d = ' || purchases_365d as evidence,
        {{ as_of_date() }} as as_of_date,
    from metrics
)

select * from final
"""

MODEL_YML = """\
version: 2

models:
  - name: tag_basket_size
    description: "{{ var('tag_catalog').basket_size.definition }}. Rule: {{ var('tag_catalog').basket_size.rule }}"

unit_tests:
  - name: basket_size_boundary
    model: tag_basket_size
    overrides: {vars: {as_of_date: "2025-06-30"}}
    given:
      - input: ref('tag_thresholds')
      - input: ref('int_customer_order_metrics')
        rows:
          - {customer_id: on, purchases_365d: 2, net_sales_365d: 2000.00}
          - {customer_id: below, purchases_365d: 2, net_sales_365d: 1999.99}
          - {customer_id: none, purchases_365d: 0, net_sales_365d: 0.00}
    expect:
      rows:
        - {customer_id: on, tag_value: large}
        - {customer_id: below, tag_value: small}
"""


MARTS = ["customer_tags", "customer_profile", "tag_catalog", "tag_value_labels"]


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*")) if path.is_file()
    }


@pytest.fixture(scope="module")
def project_with_new_tag(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("add_a_tag")
    project = copy_project(root / "project")
    before = tree_digest(project)

    catalog_file = project / "dbt_project.yml"
    config = yaml.safe_load(catalog_file.read_text(encoding="utf-8"))
    config["vars"]["tag_catalog"]["basket_size"] = NEW_TAG
    catalog_file.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False),
                            encoding="utf-8")
    with (project / "seeds" / "tag_thresholds.csv").open("a", encoding="utf-8") as thresholds:
        thresholds.write("basket_size,large_min_per_purchase,1000,net sales per purchase >= this"
                         " -> large\n")
    (project / "models" / "marts" / "tags" / "tag_basket_size.sql").write_text(MODEL_SQL)
    (project / "models" / "marts" / "tags" / "tag_basket_size.yml").write_text(MODEL_YML)

    after = tree_digest(project)
    touched = {path for path in before.keys() | after.keys() if before.get(path) != after.get(path)}

    raw = root / "raw"
    write_scenario(LandingZone(raw))
    warehouse = root / "warehouse.duckdb"
    target = root / "target"
    # the BI marts the tests read and what they are built from, its unit test with its model
    # (not the histories, segments, health and LTV card: nothing here reads them)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_INDIRECT_SELECTION", "cautious")  # no test of a model left out
        build(raw, warehouse, AS_OF, select=" ".join(f"+{mart}" for mart in MARTS),
              target_path=target, quiet=True, project_dir=project)
    return {"project": project, "touched": touched, "warehouse": warehouse,
            "manifest": target / "manifest.json"}


def test_a_tag_is_added_in_the_four_documented_places(project_with_new_tag):
    assert project_with_new_tag["touched"] == {
        "dbt_project.yml",
        "seeds/tag_thresholds.csv",
        "models/marts/tags/tag_basket_size.sql",
        "models/marts/tags/tag_basket_size.yml",
    }
    documented = (Path(__file__).parents[1] / "docs" / "adding-a-tag.md").read_text()
    for place in ("vars.tag_catalog", "seeds/tag_thresholds.csv", "tag_<code>.sql", "tag_<code>.yml"):
        assert place in documented


def test_the_new_tag_reaches_every_mart(project_with_new_tag):
    warehouse = project_with_new_tag["warehouse"]
    # a1: 12 purchases of 5,000 in the window -> large (the scenario of test_warehouse.py)
    assert query(warehouse, """select tag_value, tag_value_label_zh, tag_value_label_en, dimension,
        evidence from marts.customer_tags where customer_id = 'a1' and tag_code = 'basket_size'""") \
        == [("large", "大客单", "Large basket", "value", "net_sales_365d = 60000.00, purchases_365d = 12")]
    assert query(warehouse, "select basket_size from marts.customer_profile where customer_id = 'a1'") \
        == [("large",)]
    assert query(warehouse, """select label_en, refresh_frequency, owner, allowed_values
        from marts.tag_catalog where tag_code = 'basket_size'""") \
        == [("Basket size", "weekly", "sales-ops", "large, small")]
    assert query(warehouse, """select tag_value from marts.tag_value_labels
        where tag_code = 'basket_size' order by sort_order""") == [("large",), ("small",)]


def test_the_new_tag_is_documented_and_scheduled_from_the_catalog(project_with_new_tag):
    project, manifest_path = project_with_new_tag["project"], project_with_new_tag["manifest"]
    manifest = json.loads(manifest_path.read_text())
    model = next(n for n in manifest["nodes"].values() if n["name"] == "tag_basket_size")
    assert model["description"] == f"{NEW_TAG['definition']}. Rule: {NEW_TAG['rule']}"
    assert any(n["resource_type"] == "unit_test" and n["name"] == "basket_size_boundary"
               for n in manifest["unit_tests"].values())
    # ... and the build ran it
    results = json.loads((manifest_path.parent / "run_results.json").read_text())["results"]
    assert [r["status"] for r in results
            if r["unique_id"].startswith("unit_test.") and "basket_size_boundary" in r["unique_id"]
            ] == ["pass"]
    cadences = Cadences(read_catalog(project / "dbt_project.yml"), DbtGraph(manifest))
    assert "tag_basket_size" in cadences.tag_models("weekly")
    assert "tag_basket_size" not in cadences.models("daily")
    assert {"customer_profile", "int_customer_tag_values"} <= cadences.models("weekly")
