"""Tag health (issue 21): marts.tag_health raises exactly the planted problems.

One generated landing zone, built at two run dates eleven days apart:
- clean: the project as it is, published through the gate both times (the health history is
  carried from the published warehouse into the next candidate, and the flags never stop a
  publish). The only flag is the catalog's own: behaviour has 7 tags (the guideline's 3-5).
- planted: a copy of the project (as tests/test_add_a_tag.py adds a tag) with a tag nobody
  holds, a tag duplicating recency, and the weekly satisfaction left out of the second run, so
  it is stale. Those flags are raised, and no other.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import HEALTH_FIRST, HEALTH_RUN, copy_project, health_shop, query

from crm_tags.build import run_dbt

pytestmark = pytest.mark.slow

FIRST, RUN = HEALTH_FIRST, HEALTH_RUN  # eleven days: a weekly tag left out is stale

NOBODY_TAG = {
    "dimension": "basic",
    "tag_level": "account",
    "is_multi_valued": False,
    "label_zh": "无人标签",
    "label_en": "Nobody's tag",
    "definition": "A planted tag that no customer holds",
    "authoritative_source": "crm",
    "source_tables": ["crm.accounts"],
    "rule": "never assigned",
    "refresh_frequency": "daily",
    "owner": "crm-data-steward",
    "values": {"someone": ["某人", "Someone"]},
}

NOBODY_SQL = """\
-- planted: a tag nobody holds
with

customers as (
    select customer_id from {{ ref('dim_customers') }}
),

final as (
    select
        customer_id,
        'nobody' as tag_code,
        'someone' as tag_value,
        'never' as evidence,
        {{ as_of_date() }} as as_of_date
    from customers
    where 1 = 0
)

select * from final
"""

# The clean catalog's own finding: the behaviour dimension holds 7 tags (guideline: 3-5).
BASELINE = {("dimension:behaviour:", "too_many")}
PLANTED = {
    ("tag:nobody:", "too_few"),
    ("tag:recency:", "redundant"),
    ("tag:recency_copy:", "redundant"),
    ("tag:satisfaction:", "stale"),
}


def plant_problems(project: Path) -> None:
    config_file = project / "dbt_project.yml"
    config = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    catalog = config["vars"]["tag_catalog"]
    catalog["nobody"] = NOBODY_TAG
    catalog["recency_copy"] = {**catalog["recency"], "dimension": "basic",
                               "label_zh": "最近购买(副本)", "label_en": "Recency (copy)"}
    config_file.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False),
                           encoding="utf-8")
    tags = project / "models" / "marts" / "tags"
    (tags / "tag_nobody.sql").write_text(NOBODY_SQL)
    recency = (tags / "tag_recency.sql").read_text()
    assert "'recency' as tag_code" in recency
    (tags / "tag_recency_copy.sql").write_text(
        recency.replace("'recency' as tag_code", "'recency_copy' as tag_code"))


def flags_at(warehouse: Path, as_of: str) -> set[tuple[str, str]]:
    return set(query(warehouse, f"""select health_key, flag from marts.tag_health_flags
        where as_of_date = date '{as_of}'"""))


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict:
    # the clean builds: a copy of conftest's health_shop (its report is test_browser.py's)
    root, publishes = health_shop(tmp_path_factory)
    raw, clean = root / "raw", root / "clean.duckdb"

    project = copy_project(root / "project")
    plant_problems(project)
    planted = root / "planted.duckdb"
    target = root / "target"
    # only the health marts and what they read (not the segments, histories' readers, LTV
    # calibration); no data tests: the clean publishes ran them on the same zone, and the
    # planted models have none
    common = ["--project-dir", str(project), "--select", "+tag_health", "+tag_health_flags",
              "--exclude-resource-type", "unit_test", "--exclude-resource-type", "test"]
    run_dbt(["build", *common], raw, planted, FIRST, target, quiet=True)
    # the second run leaves the weekly satisfaction out: it keeps its first run's date
    run_dbt(["build", *common, "--exclude", "tag_satisfaction"], raw, planted, RUN, target,
            quiet=True)
    return {"clean": clean, "publishes": publishes, "planted": planted, "raw": raw, "root": root}


def test_a_clean_build_raises_none_of_the_planted_flags(builds):
    assert all(result.published for result in builds["publishes"]), \
        [result.report() for result in builds["publishes"]]
    clean = builds["clean"]
    assert flags_at(clean, FIRST) == BASELINE
    assert flags_at(clean, RUN) == BASELINE
    assert query(clean, """select flag_reasons from marts.tag_health
        where as_of_date = date '2024-12-31' and health_key = 'dimension:behaviour:'""") \
        == [("too_many: 7 tags > max_tags_per_dimension 5.0000",)]


def test_planted_problems_raise_exactly_their_flags(builds):
    planted = builds["planted"]
    assert flags_at(planted, RUN) == BASELINE | PLANTED
    # the first run: nothing stale yet, the empty and the duplicated tag already
    assert flags_at(planted, FIRST) == BASELINE | (PLANTED - {("tag:satisfaction:", "stale")})
    reasons = dict(query(planted, """select health_key, flag_reasons from marts.tag_health
        where as_of_date = date '2024-12-31' and flags <> ''"""))
    assert reasons["tag:nobody:"] == (
        "too_few: coverage 0.0000 < min_coverage 0.0100 (0 of "
        f"{query(planted, 'select count(*) from core.dim_customers where not is_deleted')[0][0]}"
        " live customers)")
    assert reasons["tag:satisfaction:"] == (
        "stale: computed as of 2024-12-20, 11 days ago > weekly cadence 7.0000 + grace 0.0000 days")
    assert reasons["tag:recency:"].startswith(
        "redundant: duplicates recency_copy: Jaccard of holders 1.0000 >= redundant_min_jaccard "
        "0.9000, values correspond for 1.0000 >= redundant_min_agreement 0.9000")


def test_flags_carry_the_threshold_from_the_seed(builds):
    rows = query(builds["planted"], """select tag_code, flag, measure, threshold, threshold_parameter
        from marts.tag_health_flags where as_of_date = date '2024-12-31' and scope = 'tag'
        order by tag_code, flag""")
    assert rows == [
        ("nobody", "too_few", 0.0, 0.01, "min_coverage"),
        ("recency", "redundant", 1.0, 0.9, "redundant_min_jaccard"),
        ("recency_copy", "redundant", 1.0, 0.9, "redundant_min_jaccard"),
        ("satisfaction", "stale", 11.0, 7.0, "cadence_days_weekly + stale_grace_days"),
    ]


def test_figures_are_kept_per_run_date(builds):
    clean = builds["clean"]
    rows = query(clean, """select as_of_date, holders, coverage, previous_as_of_date,
            previous_holders, holders_change, staleness_days, tag_as_of_date
        from marts.tag_health where health_key = 'tag:recency:' order by as_of_date""")
    assert [str(r[0]) for r in rows] == [FIRST, RUN]
    first, second = rows
    assert first[3] is None and first[5] is None  # no earlier run
    assert str(second[3]) == FIRST and second[4] == first[1]
    assert second[5] == second[1] - first[1]
    assert second[6] == 0 and str(second[7]) == RUN
    live = query(clean, "select count(*) from core.dim_customers where not is_deleted")[0][0]
    held = query(clean, "select count(distinct customer_id) from marts.customer_tags "
                        "where tag_code = 'recency'")[0][0]
    assert second[1] == held and second[2] == pytest.approx(held / live)
    # per value: the values' holders add up to the tag's (single-valued), the largest value is
    # the tag's concentration
    values = query(clean, """select tag_value, holders, value_share from marts.tag_health
        where as_of_date = date '2024-12-31' and scope = 'value' and tag_code = 'recency'
        order by sort_order""")
    assert [v[0] for v in values] == ["within_30d", "d31_90", "d91_180", "over_180d"]
    assert sum(v[1] for v in values) == held
    concentration, largest = query(clean, """select concentration, largest_value
        from marts.tag_health where as_of_date = date '2024-12-31'
        and health_key = 'tag:recency:'""")[0]
    top = max(values, key=lambda v: v[1])
    assert largest == top[0] and concentration == pytest.approx(top[1] / held)


def test_overlap_is_symmetric_and_a_jaccard_of_one_alone_is_not_redundant(builds):
    clean = builds["clean"]
    pair = query(clean, """select tag_a, jaccard, value_agreement from marts.tag_overlap
        where (tag_a, tag_b) in (('customer_grade', 'lifecycle_stage'),
                                 ('lifecycle_stage', 'customer_grade')) order by tag_a""")
    # both are held by every live customer; their values do not correspond
    assert [p[1] for p in pair] == [1.0, 1.0]
    assert pair[0][2] == pair[1][2] and pair[0][2] < 0.9


def test_stability_counts_holders_whose_value_changed(builds):
    clean = builds["clean"]
    changed, share, previous = query(clean, """select changed_holders, changed_share,
        previous_tag_as_of_date from marts.tag_health
        where as_of_date = date '2024-12-31' and health_key = 'tag:recency:'""")[0]
    # from the history: holders on both run dates with another value on the later one
    expected = query(clean, f"""
        with a as (
            select customer_id, tag_value from marts.customer_tag_history where tag_code = 'recency'
            and valid_from <= date '{FIRST}' and (valid_to is null or valid_to > date '{FIRST}')
        ), b as (
            select customer_id, tag_value from marts.customer_tag_history where tag_code = 'recency'
            and valid_from <= date '{RUN}' and (valid_to is null or valid_to > date '{RUN}')
        )
        select count(*), count(*) / (select count(*) from b) from a join b using (customer_id)
        where a.tag_value <> b.tag_value""")[0]
    assert str(previous) == FIRST and changed == expected[0] > 0
    assert share == pytest.approx(expected[1]) and share < 0.5  # no unstable flag


def test_dagster_metadata_shows_the_flags_as_warnings(builds):
    import sys

    import duckdb

    from crm_tags import PROJECT_DIR

    if str(PROJECT_DIR) not in sys.path:  # the code location's package, as test_orchestration
        sys.path.insert(0, str(PROJECT_DIR))
    from orchestration.tag_health import health_metadata

    with duckdb.connect(str(builds["planted"]), read_only=True) as con:
        metadata = health_metadata(con)
    assert metadata["tag_health/run_date"] == RUN
    assert metadata["tag_health/flag_count"] == len(BASELINE | PLANTED)
    flags = metadata["tag_health/flags"].value
    assert "| nobody | too_few: coverage 0.0000 < min_coverage 0.0100" in flags
    assert "| satisfaction | stale: computed as of 2024-12-20, 11 days ago" in flags
    assert metadata["tag_health/coverage"].value["nobody"] == 0.0


def test_no_backtest_window_has_elapsed_eleven_days_in(builds):
    # the runs are 11 days apart, the window 90 days: nothing is measured, nothing flagged
    assert query(builds["clean"], "select count(*) from marts.tag_effectiveness") == [(0,)]


def test_dagster_asset_checks_warn_per_flag_and_never_block(builds):
    import os
    import sys

    import duckdb

    from crm_tags import PROJECT_DIR

    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    os.environ.setdefault("CRM_DAGSTER_DBT_TARGET", str(builds["root"] / "dagster_target"))
    from dagster import AssetCheckSeverity

    from orchestration import definitions
    from orchestration.assets import asset_key_of
    from orchestration.tag_health import CHECK_PREFIX, FLAGS, check_result, flag_findings

    graph = definitions.build_definitions().resolve_asset_graph()
    health_key = asset_key_of("tag_health")
    specs = {k.name: graph.get_check_spec(k) for k in graph.asset_check_keys
             if k.asset_key == health_key and k.name.startswith(CHECK_PREFIX)}
    assert set(specs) == {CHECK_PREFIX + flag for flag in FLAGS}
    assert not any(spec.blocking for spec in specs.values())

    with duckdb.connect(str(builds["planted"]), read_only=True) as con:
        run_date, findings = flag_findings(con)
    results = {flag: check_result(health_key, flag, run_date, findings[flag]) for flag in FLAGS}
    assert run_date == RUN
    assert {f for f, r in results.items() if not r.passed} == {
        "too_few", "redundant", "stale", "too_many"}
    assert all(r.severity == AssetCheckSeverity.WARN for r in results.values())
    assert results["stale"].description == "stale: satisfaction"
    assert results["redundant"].description == "redundant: recency, recency_copy"


def test_report_shows_effectiveness_or_says_why_not(builds, tmp_path):
    import shutil

    import duckdb

    from crm_tags.report import render

    assert "No backtest yet: no past run date's window" in render(builds["clean"])
    warehouse = tmp_path / "w.duckdb"
    shutil.copy(builds["clean"], warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("""insert into marts.tag_effectiveness (backtest_date, window_end, tag_code,
            tag_value, holders, repurchase_rate, repurchase_lift, net_sales_per_customer,
            net_sales_lift, is_uninformative) values
            ('2024-01-01', '2024-03-31', 'recency', 'within_30d', 1200, 0.6, 1.5, 80, 2.0, false),
            ('2024-01-01', '2024-03-31', 'region', 'north', 40, 0.4, 1.0, 10, 0.25, true),
            ('2023-10-01', '2023-12-30', 'recency', 'over_180d', 40, 0.1, 0.2, 1, 0.1, false)""")
    html = render(warehouse)
    table = html.split("<table id='effectiveness'>")[1].split("</table>")[0]
    assert "<td>within_30d</td><td>1,200</td><td>60.0%</td><td>1.50</td><td>80.00</td><td>2.00</td>" \
        in table
    assert "区域 / Region <span class='flag'>uninformative</span>" in table
    assert "over_180d" not in table  # only each tag's latest backtest date
