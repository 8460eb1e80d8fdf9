"""dbt docs document the whole project (issue 18: `dbt docs generate` leaves no model without a
description; issue 24: every model, seed and mart column described, exposures for the BI marts,
the catalog's definitions visible). The site is generated as `crm-tags docs` generates it."""

from __future__ import annotations

import copy
import json

import pytest
from conftest import docs_site

from crm_tags.docs import DocsSite, profile_tag_columns, undocumented

pytestmark = pytest.mark.slow

BI_MARTS = {"customer_tags", "customer_profile", "contact_tags", "tag_catalog", "tag_value_labels"}
# what the exposures read besides: the segments, the LTV model card and the tag history
EXPOSED = BI_MARTS | {"segment_members", "segment_catalog", "segment_membership_changes",
                      "segment_membership_history", "ltv_model_fits", "ltv_calibration",
                      "customer_tag_history", "contact_tag_history", "tag_transitions",
                      "tag_health", "tag_health_flags", "tag_overlap",
                      "tag_effectiveness"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> DocsSite:
    return docs_site(tmp_path_factory)  # generate_docs, once per run (also test_browser.py's)


@pytest.fixture(scope="module")
def manifest(site: DocsSite) -> dict:
    return json.loads(site.manifest.read_text())


@pytest.fixture(scope="module")
def catalog(site: DocsSite) -> dict:
    return json.loads(site.catalog.read_text())


def test_every_model_seed_source_and_bi_mart_column_is_described(manifest: dict, catalog: dict) -> None:
    problems = undocumented(manifest, catalog)
    assert problems == [], "dbt docs leave these undescribed:\n" + "\n".join(problems)
    # the check saw the whole project, with the marts' columns as built
    models = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert BI_MARTS | {"tag_customer_grade", "stg_crm__accounts", "base_crm__accounts"} <= models
    assert "churn_risk" in catalog["nodes"]["model.crm_tags.customer_profile"]["columns"]


def test_check_names_each_undescribed_thing(manifest: dict, catalog: dict) -> None:
    broken = copy.deepcopy(manifest)
    nodes = broken["nodes"]
    nodes["model.crm_tags.stg_crm__accounts"]["description"] = ""
    nodes["seed.crm_tags.tag_thresholds"]["description"] = " "
    nodes["seed.crm_tags.tag_thresholds"]["columns"]["meaning"]["description"] = ""
    nodes["model.crm_tags.customer_tags"]["columns"]["evidence"]["description"] = ""
    del nodes["model.crm_tags.contact_tags"]["columns"]["as_of_date"]
    nodes["model.crm_tags.tag_catalog"]["columns"]["retired_column"] = {"name": "retired_column",
                                                                         "description": "Gone."}
    # the profile's list of tag columns no longer names recency
    profile = nodes["model.crm_tags.customer_profile"]
    profile["description"] = profile["description"].replace("recency, ", "")
    broken["sources"]["source.crm_tags.crm.accounts"]["description"] = ""
    # a profile column that is not a tag is never excused by the list, even if the list names it
    built = copy.deepcopy(catalog)
    columns = built["nodes"]["model.crm_tags.customer_profile"]["columns"]
    columns["lucky_number"] = {"name": "lucky_number", "index": 99, "type": "INTEGER"}
    profile["description"] = profile["description"].replace("industry, ", "industry, lucky_number, ")

    assert undocumented(broken, built) == [
        "model contact_tags (models/marts/contact_tags.sql): column as_of_date has no description",
        "model customer_profile (models/marts/customer_profile.sql): column recency has no description",
        "model customer_profile (models/marts/customer_profile.sql): column lucky_number has no description",
        "model customer_tags (models/marts/customer_tags.sql): column evidence has no description",
        "model stg_crm__accounts (models/staging/crm/stg_crm__accounts.sql) has no description",
        ("model tag_catalog (models/marts/tag_catalog.sql): column retired_column is described but "
         "not in the table"),
        "seed tag_thresholds (seeds/tag_thresholds.csv) has no description",
        "seed tag_thresholds (seeds/tag_thresholds.csv): column meaning has no description",
        "source crm.accounts (models/staging/crm/_crm__sources.yml) has no description",
    ]


def test_profile_tag_columns_are_the_single_valued_account_tags(manifest: dict, catalog: dict) -> None:
    tags = profile_tag_columns()
    built = catalog["nodes"]["model.crm_tags.customer_profile"]["columns"]
    assert tags and set(tags) <= {c.lower() for c in built}
    assert "browsing_interest" not in tags and "decision_role" not in tags  # multi-valued, contact
    description = manifest["nodes"]["model.crm_tags.customer_profile"]["description"]
    assert f"The tag columns, from the catalog: {', '.join(tags)};" in description


def test_tag_models_show_their_catalog_definition_and_rule(manifest: dict) -> None:
    import yaml

    from crm_tags import PROJECT_DIR

    tag_catalog = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())["vars"]["tag_catalog"]
    # tag_ltv's YAML (_ltv__models.yml, the LTV model's home) describes the fitted model instead
    for code, tag in tag_catalog.items():
        if code == "ltv":
            continue
        node = manifest["nodes"][f"model.crm_tags.tag_{code}"]
        assert node["description"] == f"{tag['definition']}. Rule: {tag['rule']}", code


def test_exposures_name_the_bi_marts_and_their_readers(manifest: dict) -> None:
    exposures = manifest["exposures"]
    read = {dep.split(".")[-1] for e in exposures.values() for dep in e["depends_on"]["nodes"]}
    assert read == EXPOSED
    for exposure in exposures.values():
        assert exposure["description"].strip() and exposure["owner"]["name"], exposure["name"]
    assert {e["name"] for e in exposures.values()} == {
        "bi_tag_dashboards", "marketing_audiences", "tag_stewardship"}


def test_site_is_one_offline_page(site: DocsSite) -> None:
    html = site.index.read_text()
    # the manifest is embedded (dbt docs generate --static), so file:// needs no fetch
    assert "tag_stewardship" in html and "marketing_audiences" in html
    assert '"send_anonymous_usage_stats": false' in html
