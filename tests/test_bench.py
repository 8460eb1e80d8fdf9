"""The benchmark's reference query against the dbt project: two independent implementations of
the tag rules must give the same (customer_id, tag_code, tag_value) set.

The landing zone is a small generated one with dirt (duplicates, re-deliveries, null and unknown
keys, negative amounts, future dates, unknown enums, ambiguous emails), plus the hand-made
edge-case customers of test_warehouse.py (window edges, same-instant manual actions, ...).
No assertion here is about time: the benchmark itself is `crm-tags bench`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from conftest import LandingZone, query
from test_warehouse import write_scenario

from crm_tags.bench import (
    build_tags,
    dbt_profile,
    ensure_landing_zone,
    format_table,
    link_tree,
    reference_tag_codes,
    reference_tags,
    render_reference_sql,
    run_daily_job,
    write_daily_delivery,
)
from crm_tags.build import DbtError, run_dbt
from crm_tags.generate import generate_landing_zone

AS_OF = "2025-06-30"
NEXT_DAY = "2025-07-01"
ALL_TAGS = {
    "industry", "company_size", "region", "purchase_frequency", "recency", "product_preference",
    "customer_grade", "profit_contribution", "price_sensitivity", "service_preference",
    "lifecycle_stage", "browsing_interest", "purchase_intent", "campaign_engagement",
    "satisfaction", "complaint_risk", "manual",
}

pytestmark = pytest.mark.slow


def build_customer_tags(raw_dir: Path, warehouse: Path, as_of: str, target: Path) -> None:
    """Build marts.customer_tags and the seeds and models upstream of it, nothing else: the data
    and unit tests are not what this compares, and ltv (not in the reference) is left out."""
    run_dbt(["build", "--select", "+customer_tags", "--exclude-resource-type", "test",
             "--exclude-resource-type", "unit_test"],
            raw_dir, warehouse, as_of, target_path=target, quiet=True)


@pytest.fixture(scope="module")
def zone(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("bench")
    raw = root / "raw"
    stats = generate_landing_zone(raw, 800, seed=7, as_of=dt.date.fromisoformat(AS_OF), dirty=0.05)
    write_scenario(LandingZone(raw))  # its ids (a1, o1_00, ...) do not collide with generated ones
    warehouse = root / "warehouse.duckdb"
    build_customer_tags(raw, warehouse, AS_OF, root / "target")
    return {"root": root, "raw": raw, "warehouse": warehouse, "stats": stats}


def test_reference_matches_customer_tags_on_dirty_data(zone):
    assert sum(n for per_table in zone["stats"]["dirt"].values() for n in per_table.values()) > 0
    built = build_tags(zone["warehouse"])
    reference = reference_tags(zone["raw"], AS_OF)
    assert sorted(built - reference)[:20] == []
    assert sorted(reference - built)[:20] == []
    # not vacuous: every tag the reference covers is assigned to someone
    assert {code for _, code, _ in reference} == ALL_TAGS
    # the tags compared are those the reference names; the fitted ones are not among them
    assert set(reference_tag_codes()) == ALL_TAGS
    # the hand-made edge cases are in it (a1: every order tag; a3 deleted, a5 rejected)
    assert ("a1", "customer_grade", "vip") in reference
    assert ("a2", "lifecycle_stage", "at_risk") in reference
    assert not {row for row in reference if row[0] in ("a3", "a5")}


def test_daily_refresh_matches_reference(zone, tmp_path):
    day2 = tmp_path / "raw_next_day"
    link_tree(zone["raw"], day2)
    delivered = write_daily_delivery(day2, AS_OF)
    assert delivered["orders/orders"] > 0 and delivered["orders/order_items"] > 0
    # the cached zone is untouched: the new files only exist in the linked copy
    assert not list(zone["raw"].rglob(f"{NEXT_DAY}_daily.parquet"))
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(zone["warehouse"], warehouse)  # the refresh runs on yesterday's warehouse
    build_customer_tags(day2, warehouse, NEXT_DAY, tmp_path / "target")
    assert query(warehouse, "select distinct as_of_date from marts.customer_tags") == [
        (dt.date(2025, 7, 1),)]
    assert build_tags(warehouse) == reference_tags(day2, NEXT_DAY)


def test_daily_job_rebuilds_the_daily_tags_then_restores_the_warehouse(zone, tmp_path):
    day2 = tmp_path / "raw_next_day"
    link_tree(zone["raw"], day2)
    write_daily_delivery(day2, AS_OF)
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(zone["warehouse"], warehouse)
    # the scheduler's parse of the project, made with this warehouse path and another run date
    run_dbt(["parse"], zone["raw"], warehouse, AS_OF, target_path=tmp_path / "parsed", quiet=True)
    step = run_daily_job(day2, warehouse, NEXT_DAY, tmp_path, tmp_path / "parsed")
    assert step.status == "ok", step.detail.get("error")
    output = (tmp_path / "target_daily_job" / "bench-dbt-output.log").read_text()
    # it started from that parse: a new run date re-parses nothing
    assert "Unable to do partial parsing" not in output and "Found " in output
    run_results = json.loads((tmp_path / "target_daily_job" / "run_results.json").read_text())
    built = {r["unique_id"].split(".")[-1] for r in run_results["results"]
             if r["unique_id"].startswith("model.")}
    # daily tags and the marts; weekly (satisfaction) and monthly (ltv) tags are not rebuilt
    assert {"tag_recency", "tag_purchase_intent", "customer_tags", "reconciliation"} <= built
    assert not {"tag_ltv", "tag_satisfaction", "tag_profit_contribution"} & built
    # the warehouse is back as the daily job found it (the next step starts from it)
    assert not (tmp_path / "warehouse_before_daily_job.duckdb").exists()
    assert query(warehouse, "select distinct as_of_date from marts.customer_tags") == [
        (dt.date(2025, 6, 30),)]


def test_run_date_from_the_environment_keeps_partial_parsing(zone, tmp_path):
    """CRM_AS_OF_DATE (what schedulers pass) changes the compiled SQL without a re-parse; a
    malformed one is an error naming the variable."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(zone["warehouse"], warehouse)
    target = tmp_path / "target"
    compiled = target / "compiled" / "crm_tags" / "models" / "intermediate" / "orders" / "int_customer_order_metrics.sql"
    compile_metrics = ["compile", "--select", "int_customer_order_metrics"]
    run_dbt(compile_metrics, zone["raw"], warehouse, AS_OF, target_path=target, quiet=True)
    assert "cast('2025-06-30' as date)" in compiled.read_text()
    output = run_dbt(compile_metrics, zone["raw"], warehouse, NEXT_DAY, target_path=target, quiet=True)
    assert "cast('2025-07-01' as date)" in compiled.read_text()
    assert "cast('2025-06-30' as date)" not in compiled.read_text()
    assert "Unable to do partial parsing" not in output and "Found " in output
    with pytest.raises(DbtError, match="CRM_AS_OF_DATE must be 'YYYY-MM-DD', got '2025-7-1'"):
        run_dbt(compile_metrics, zone["raw"], warehouse, "2025-7-1", target_path=target, quiet=True)


def test_reference_on_an_empty_landing_zone(tmp_path):
    sql = render_reference_sql(tmp_path / "nothing_here", AS_OF)
    assert not re.search(r"\{\{(raw:|seed:|as_of)[a-z_/]*\}\}", sql)  # every placeholder filled
    assert reference_tags(tmp_path / "nothing_here", AS_OF) == set()


def test_profile_from_run_results(zone):
    profile = dbt_profile(zone["root"] / "target")
    assert profile["customer_tags_built"] and not profile["failed_nodes"]
    assert len(profile["top_nodes"]) == 10
    seconds = [n["seconds"] for n in profile["top_nodes"]]
    assert seconds == sorted(seconds, reverse=True)
    assert {"model", "seed"} <= set(profile["by_type"])


def test_landing_zone_cache_is_reused(tmp_path):
    raw, first = ensure_landing_zone(tmp_path, 30, seed=1, as_of=AS_OF)
    again, second = ensure_landing_zone(tmp_path, 30, seed=1, as_of=AS_OF)
    assert raw == again and not first["reused"] and second["reused"]
    assert first["rows"]["crm/accounts"] > 0


def test_results_table():
    results = {
        "customers": 1000, "as_of": AS_OF,
        "machine": {"cpus": 2, "memory_limit": "6GB", "load_average_at_start": [0.1, 0, 0],
                    "load_average_at_end": [1.0, 0, 0]},
        "steps": [
            {"step": "dbt build (full)", "status": "ok", "seconds": 30.0, "cpu_seconds": 40.0,
             "ratio_to_reference": 15.0, "peak_rss_bytes": 2**30,
             "profile": {"dbt_elapsed_seconds": 20.0, "by_type": {"model": {"count": 1, "seconds": 9.0}},
                         "top_nodes": [{"node": "fct_orders", "type": "model", "seconds": 9.0}],
                         "failed_nodes": []}},
            {"step": "reference query", "status": "ok", "seconds": 2.0, "cpu_seconds": 3.0,
             "ratio_to_reference": 1.0, "peak_rss_bytes": 2**29},
            {"step": "quality gate", "status": "not available", "seconds": None, "cpu_seconds": None,
             "ratio_to_reference": None, "peak_rss_bytes": None},
        ],
        "targets": {"peak_rss_bytes": {"max": 8 * 2**30, "value": 2**30, "met": True}},
        "reference_check": {"full_build": {"matches": True}},
    }
    table = format_table(results)
    assert "dbt build (full)" in table and "15.00" in table and "1.00 GB" in table
    assert "not available" in table and "fct_orders" in table and "match" in table
    assert "memory_limit 6GB" in table and "target peak_rss_bytes" in table

    # an engine's run: DuckDB's memory_limit and peak budget are not shown against a JVM
    del results["machine"]["memory_limit"]
    table = format_table({**results, "target": "spark", "targets": {}})
    assert table.startswith("crm-tags bench on spark: 1,000 customers")
    assert "memory_limit" not in table and "target peak_rss_bytes" not in table


def test_engine_runs_count_adopted_processes_and_record_their_steps(tmp_path):
    """The spark target's JVM outlives the dbt process that started it: `crm-tags bench
    --target` adopts such orphans and reaps them, so their CPU is counted in the step."""
    from crm_tags.bench import _node_times, _reap_orphans, _set_subreaper
    from crm_tags.python_on_host import own_cpu, record_steps, timed_step

    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass"
    orphan = f"import subprocess, sys; subprocess.Popen([sys.executable, '-c', {burn!r}])"
    others = {child.pid for child in psutil.Process().children()}  # pytest's own, if any
    _set_subreaper(True)
    try:
        with (record_steps(lambda: (_reap_orphans(others), own_cpu())[1]) as parts,
              timed_step("a child that leaves an orphan behind")):
            subprocess.run([sys.executable, "-c", orphan], check=True)
    finally:
        _set_subreaper(False)
    assert [p["step"] for p in parts] == ["a child that leaves an orphan behind"]
    assert parts[0]["cpu_seconds"] >= 0.6  # the orphan's CPU, not only its parent's start-up

    log = tmp_path / "bench-dbt-output.log"
    log.write_text(
        "00:45:49  1 of 178 OK created sql incremental model staging.base_campaigns__attributed_orders"
        "  [SELECT 2309 in 0.60s]\n"
        "00:45:50  2 of 178 OK created sql table model tags.tag_recency ..... [SELECT 143 in 2.50s]\n"
    )
    assert _node_times(tmp_path) == [
        {"node": "created sql table model tags.tag_recency", "seconds": 2.5},
        {"node": "created sql incremental model staging.base_campaigns__attributed_orders", "seconds": 0.6},
    ]
