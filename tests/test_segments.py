"""Segments end to end on the hand-made landing zone of test_warehouse (a1: a loyal B2B VIP in
the east; a2: a lapsed, complaining B2C customer with no region; a4: a prospect in the south
browsing books), plus 40 prospects b01..b40; run date 2025-06-30.

One segments file covers every operator, a priority list and two holdouts. The warehouse is
built and published three times on one file (write-audit-publish): the run date, the next day
(a2 is blacklisted, b01 buys for the first time), then the first date again (out of order): the
membership history keeps the changes as periods and the re-run changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from conftest import LandingZone, query, ts, without_data_tests
from test_warehouse import AS_OF, write_scenario

from crm_tags import PROJECT_DIR
from crm_tags.quality.publish import build_and_publish, candidate_path, gate_and_publish
from crm_tags.segments import holdout_bucket, load_segments

pytestmark = pytest.mark.slow

NEXT_DAY = "2025-07-01"
PROSPECTS = [f"b{n:02d}" for n in range(1, 41)]
EVERYONE = ["a1", "a2", "a4", *PROSPECTS]
HOSTILE_LABEL = "'); drop table marts.customer_profile; -- \"$p1\""

SEGMENTS = f"""
segments:
  - code: vip
    label_zh: VIP
    label_en: VIP
    owner: marketing
    description: grade vip
    where: customer_grade = 'vip'
  - code: not_vip
    label_zh: 非VIP
    label_en: {json.dumps(HOSTILE_LABEL)}
    owner: marketing
    description: "grade not vip; a label that looks like SQL"
    where: customer_grade <> 'vip'
  - code: east_or_south
    label_zh: 华东华南
    label_en: East or south
    owner: sales-ops
    description: region in a list
    where: region in ('east', 'south')
  - code: outside_east
    label_zh: 华东以外
    label_en: Outside the east
    owner: sales-ops
    description: no region is outside the east too
    where: region NOT IN ('east')
  - code: no_region
    label_zh: 无区域
    label_en: No region
    owner: sales-ops
    description: region is null
    where: region is null
  - code: books_browsers
    label_zh: 图书浏览
    label_en: Book browsers
    owner: marketing
    description: multi-valued has
    where: browsing_interest has 'books'
  - code: big_spenders
    label_zh: 高消费
    label_en: Big spenders
    owner: finance
    description: a metric at its edge (60,000.00 exactly)
    where: net_sales_365d >= 60000
  - code: lapsed
    label_zh: 沉睡客户
    label_en: Lapsed
    owner: sales-ops
    description: two metric comparisons
    where: days_since_last_purchase > 180 and purchases_total >= 1
  - code: light_buyers
    label_zh: 轻度购买
    label_en: Light buyers
    owner: sales-ops
    description: '<= and >'
    where: purchases_365d <= 11 and purchases_total > 0
  - code: recent
    label_zh: 近期购买
    label_en: Recent
    owner: sales-ops
    description: '<'
    where: days_since_last_purchase < 31
  - code: early_customers
    label_zh: 老客户
    label_en: Early customers
    owner: sales-ops
    description: a date metric
    where: first_purchase_date < '2025-01-01'
  - code: with_intent
    label_zh: 有购买意向
    label_en: With intent
    owner: marketing
    description: a multi-valued tag is not null
    where: purchase_intent is not null
  - code: no_manual
    label_zh: 无人工标签
    label_en: No manual tag
    owner: sales-ops
    description: a multi-valued tag is null
    where: manual is null
  - code: vip_or_books_not_complaining
    label_zh: 组合
    label_en: Combined
    owner: marketing
    description: in_segment, or, and, not, parentheses
    where: >-
      (in_segment('vip') or in_segment('books_browsers'))
      and not complaint_risk = 'complaint_prone'
  - code: contactable
    label_zh: 可联系
    label_en: Contactable
    owner: marketing
    description: not has, with a named holdout salt
    where: not manual has 'blacklist'
    holdout_percent: 10
    holdout_salt: spring_2025
  - code: p_high_value
    label_zh: 优先一
    label_en: First
    owner: marketing
    description: first of the priority list
    where: customer_grade in ('vip', 'important')
  - code: p_engaged
    label_zh: 优先二
    label_en: Second
    owner: marketing
    description: second of the priority list
    where: campaign_engagement in ('medium', 'none')
  - code: p_rest
    label_zh: 优先三
    label_en: Third
    owner: marketing
    description: third of the priority list
    where: customer_grade is not null
  - code: prospects
    label_zh: 潜在客户
    label_en: Prospects
    owner: marketing
    description: half held out, salted with the code
    where: lifecycle_stage = 'prospect'
    holdout_percent: 50
priority_lists:
  - code: campaign
    segments: [p_high_value, p_engaged, p_rest]
"""

# Worked out by hand from the scenario (see test_warehouse for each customer's tags).
EXPECTED = {
    "vip": ["a1"],
    "not_vip": ["a2", "a4", *PROSPECTS],
    "east_or_south": ["a1", "a4"],
    "outside_east": ["a2", "a4", *PROSPECTS],  # a customer without a region is outside the east
    "no_region": ["a2", *PROSPECTS],
    "books_browsers": ["a4"],
    "big_spenders": ["a1"],  # 60,000.00 net sales
    "lapsed": ["a2"],  # last purchase 365 days ago
    "light_buyers": ["a2"],  # bought, but not in the 365-day window
    "recent": ["a1"],
    "early_customers": ["a1", "a2"],
    "with_intent": ["a4"],
    "no_manual": ["a2", "a4", *PROSPECTS],  # a2's blacklist was removed
    "vip_or_books_not_complaining": ["a1", "a4"],
    "contactable": EVERYONE,
    "p_high_value": ["a1"],
    "p_engaged": ["a2"],  # a1 (medium) is taken by p_high_value
    "p_rest": ["a4", *PROSPECTS],
    "prospects": ["a4", *PROSPECTS],
}
SALTS = {"contactable": ("spring_2025", 10), "prospects": ("prospects", 50)}


def deliver_prospects(landing: LandingZone) -> None:
    landing.deliver("crm/accounts", [
        {"account_id": b, "account_name": f"Prospect {b}", "customer_type": "B2C",
         "updated_at": ts(AS_OF, 400), "is_deleted": False} for b in PROSPECTS
    ])
    landing.deliver("crm/contacts", [
        {"contact_id": f"k_{b}", "account_id": b, "full_name": f"Person {b}",
         "email": f"{b}@example.com", "phone": "13800000000", "updated_at": ts(AS_OF, 50)}
        for b in PROSPECTS[:3]
    ])


def deliver_next_day(landing: LandingZone) -> None:
    """a2 is blacklisted and b01 buys for the first time, both on the next day."""
    landing.deliver("crm/manual_tags", [
        {"account_id": "a2", "tag_code": "blacklist", "action": "add", "operator": "li",
         "operated_at": ts(NEXT_DAY, 0, hour=9)},
    ])
    landing.deliver("orders/orders", [
        {"order_id": "ob01", "account_id": "b01", "order_ts": ts(NEXT_DAY, 0, hour=9),
         "status": "paid", "sales_channel": "online", "_ingested_at": ts(NEXT_DAY, 0, hour=11)},
    ])
    landing.deliver("orders/order_items", [
        {"order_id": "ob01", "line_no": 1, "product_id": "p2", "quantity": 1,
         "unit_price": Decimal("50.00"), "discount_amount": Decimal("0.00"),
         "unit_cost": Decimal("20.00")},
    ])


def members(warehouse: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for code, customer in query(warehouse, "select segment_code, customer_id "
                                           "from marts.segment_members order by all"):
        found.setdefault(code, []).append(customer)
    return found


def holdouts(warehouse: Path) -> dict[tuple[str, str], bool]:
    return {(c, m): h for c, m, h in query(
        warehouse, "select segment_code, customer_id, is_holdout from marts.segment_members")}


HISTORY = ("select segment_code, customer_id, is_holdout, valid_from, valid_to "
           "from marts.segment_membership_history order by all")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> SimpleNamespace:
    root = tmp_path_factory.mktemp("segments")
    landing = LandingZone(root / "raw")
    write_scenario(landing)
    deliver_prospects(landing)
    (root / "segments.yml").write_text(SEGMENTS, encoding="utf-8")
    warehouse = root / "bi" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    state = SimpleNamespace(root=root, warehouse=warehouse, landing=landing)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRM_SEGMENTS_FILE", str(root / "segments.yml"))

        def publish(as_of: str, name: str):
            result = build_and_publish(landing.root, warehouse, as_of, target_path=root / "target",
                                       runtime_dir=root / "gx")
            assert result.published, result.report()
            setattr(state, f"{name}_members", members(warehouse))
            setattr(state, f"{name}_holdouts", holdouts(warehouse))
            setattr(state, f"{name}_history", query(warehouse, HISTORY))
            setattr(state, f"{name}_runs", query(
                warehouse, "select * from marts.segment_runs order by all"))

        publish(AS_OF, "day1")
        state.day1_catalog = {row[0]: row for row in query(warehouse, """
            select segment_code, label_en, description, member_count, holdout_count, share,
                   entered_count, exited_count, priority_list, priority_rank, definition,
                   as_of_date
            from marts.segment_catalog""")}
        deliver_next_day(landing)
        # the later builds leave out the dbt data tests the first ran on the same models (the
        # gate audits every candidate): this file asserts what each publish leaves behind
        with without_data_tests():
            publish(NEXT_DAY, "day2")
        state.day2_changes = {(r[0], str(r[1])): r[2:] for r in query(warehouse, """
            select segment_code, as_of_date, entered_count, exited_count, member_count
            from marts.segment_membership_changes""")}
        with without_data_tests():
            publish(AS_OF, "rerun")  # the first date again, after the second
        yield state


# --- membership -------------------------------------------------------------------------------


def test_every_operator_selects_the_hand_worked_customers(built):
    assert built.day1_members == EXPECTED


def test_holdout_is_the_salted_md5_bucket_and_nobody_else_is_held_out(built):
    for (code, customer), is_holdout in built.day1_holdouts.items():
        salt, percent = SALTS.get(code, (code, 0))
        assert is_holdout == (holdout_bucket(salt, customer) < percent * 100), (code, customer)
    held = [c for (code, c), h in built.day1_holdouts.items() if code == "prospects" and h]
    assert 0 < len(held) < len(EXPECTED["prospects"])  # about half of 41


def test_holdout_is_stable_across_runs(built):
    kept = set(built.day1_holdouts) & set(built.day2_holdouts)
    assert len(kept) > 200
    assert {k: built.day2_holdouts[k] for k in kept} == {k: built.day1_holdouts[k] for k in kept}
    assert built.rerun_holdouts == built.day1_holdouts


def test_catalog_counts_shares_labels_and_priority(built):
    catalog = built.day1_catalog
    assert set(catalog) == set(EXPECTED)
    customers = len(EVERYONE)
    for code, row in catalog.items():
        assert row[3] == len(EXPECTED[code]), code
        assert float(row[5]) == pytest.approx(len(EXPECTED[code]) / customers, abs=1e-6)
        assert (row[6], row[7]) == (len(EXPECTED[code]), 0)  # first run: everyone entered
        assert row[11] == dt.date.fromisoformat(AS_OF)
    prospects_held = sum(1 for (c, _), h in built.day1_holdouts.items() if c == "prospects" and h)
    assert catalog["prospects"][4] == prospects_held
    assert [catalog[c][8:10] for c in ("p_high_value", "p_engaged", "p_rest", "vip")] == [
        ("campaign", 1), ("campaign", 2), ("campaign", 3), (None, None)]
    # free text is data, stored as written: the label that looks like SQL did nothing
    assert catalog["not_vip"][1] == HOSTILE_LABEL
    assert query(built.warehouse, "select count(*) from marts.customer_profile") == [(43,)]
    assert catalog["vip_or_books_not_complaining"][10] == (
        "(in_segment('vip') or in_segment('books_browsers')) "
        "and not complaint_risk = 'complaint_prone'")


# --- the next day and a re-run: membership history ----------------------------------------


def test_the_next_day_moves_the_changed_customers(built):
    day1, day2 = built.day1_members, built.day2_members
    assert "a2" in day1["no_manual"] and "a2" not in day2["no_manual"]  # blacklisted
    assert "a2" in day1["contactable"] and "a2" not in day2["contactable"]
    assert "b01" in day1["prospects"] and "b01" not in day2["prospects"]  # bought
    assert set(day2["prospects"]) == set(day1["prospects"]) - {"b01"}


def test_history_keeps_the_changes_as_periods(built):
    d1, d2 = dt.date.fromisoformat(AS_OF), dt.date.fromisoformat(NEXT_DAY)
    history = {(code, customer): [] for code, customer, *_ in built.day2_history}
    for code, customer, is_holdout, valid_from, valid_to in built.day2_history:
        history[(code, customer)].append((is_holdout, valid_from, valid_to))
    assert history[("no_manual", "a2")] == [(False, d1, d2)]  # left on the next day
    assert history[("no_manual", "a4")] == [(False, d1, None)]  # still there: one row
    [(held, start, end)] = history[("prospects", "b01")]
    assert (held, start, end) == (holdout_bucket("prospects", "b01") < 5000, d1, d2)
    # one row per membership that held on both days, not one per day
    assert len(built.day2_history) == len(built.day1_history) + sum(
        1 for row in built.day2_history if row[3] == d2)
    assert built.day2_changes[("no_manual", NEXT_DAY)][:2] == (0, 1)
    assert built.day2_changes[("prospects", NEXT_DAY)][:2] == (0, 1)
    assert built.day2_changes[("vip", NEXT_DAY)] == (0, 0, 1)
    assert built.day2_changes[("vip", AS_OF)] == (1, 0, 1)


def test_a_date_run_again_out_of_order_changes_no_history(built):
    assert built.rerun_history == built.day2_history
    assert built.rerun_runs == built.day2_runs
    # the published members are the first date's again
    assert built.rerun_members == built.day1_members
    assert {str(r[0]) for r in query(built.warehouse, "select distinct as_of_date from "
                                                      "marts.segment_members")} == {AS_OF}


def test_history_answers_membership_on_a_date(built):
    on = """select customer_id from marts.segment_membership_history
            where segment_code = 'no_manual' and valid_from <= date '{d}'
                and (valid_to is null or valid_to > date '{d}') order by 1"""
    assert [r[0] for r in query(built.warehouse, on.format(d=AS_OF))] == EXPECTED["no_manual"]
    assert [r[0] for r in query(built.warehouse, on.format(d=NEXT_DAY))] == [
        c for c in EXPECTED["no_manual"] if c != "a2"]


def test_the_gate_stops_a_history_that_overlaps_or_disagrees_with_the_members(built, tmp_path):
    """The history's cross-table checks are the gate's (expectations/suites/tag_marts.py): a
    candidate whose history overlaps, or misses a member on the run date, is not published."""
    bi = tmp_path / "warehouse.duckdb"
    shutil.copyfile(built.warehouse, bi)
    candidate = candidate_path(bi)
    shutil.copyfile(built.warehouse, candidate)
    with duckdb.connect(str(candidate)) as con:
        # a second open period of a1 in vip, from the next day: overlaps, but not on the run date
        con.execute("insert into marts.segment_membership_history "
                    f"values ('vip', 'a1', false, date '{NEXT_DAY}', null)")
        con.execute("delete from marts.segment_membership_history "
                    "where segment_code = 'books_browsers' and customer_id = 'a4'")
    result = gate_and_publish(candidate, bi, manifest=built.root / "target" / "manifest.json",
                              runtime_dir=tmp_path / "gx")
    assert not result.published
    failures = {f.suite: f.examples for f in result.gate.failures}
    assert set(failures) == {"tag_marts.segment_history_periods",
                             "tag_marts.segment_history_matches_members"}
    assert failures["tag_marts.segment_history_periods"] == [
        (f"marts.segment_membership_history: a1 in vip from {NEXT_DAY} overlaps its period "
         f"from {AS_OF} (until open)")]
    assert failures["tag_marts.segment_history_matches_members"] == [
        ("marts.segment_membership_history: 1 rows of books_browsers on the run date are not "
         "in the history, e.g. a4 (holdout false)")]


# --- preview ----------------------------------------------------------------------------------


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    from crm_tags.cli import main

    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_preview_json_counts_what_the_profile_sql_counts(built, capsys):
    expression = "customer_grade = 'vip' and purchase_frequency = 'high'"
    code, out, _ = run_cli(capsys, "segments", "preview", expression, "--json",
                           "--warehouse", str(built.warehouse))
    assert code == 0
    result = json.loads(out)
    [(count,)] = query(built.warehouse, "select count(*) from marts.customer_profile "
                                        "where customer_grade = 'vip' and purchase_frequency = 'high'")
    assert result["count"] == count == 1
    assert result["sample"] == ["a1"]
    assert result["share"] == pytest.approx(1 / 43)
    assert result["by_customer_grade"] == {"vip": 1}


def test_preview_reads_published_segments_and_multi_valued_tags(built, capsys):
    code, out, _ = run_cli(capsys, "segments", "preview",
                           "in_segment('prospects') and not browsing_interest has 'books'",
                           "--json", "--warehouse", str(built.warehouse))
    result = json.loads(out)
    assert code == 0 and result["count"] == len(PROSPECTS)
    assert result["by_customer_grade"] == {"potential": 40}
    assert len(result["sample"]) == 10 and set(result["sample"]) <= set(PROSPECTS)


def test_preview_names_the_mistake_and_hostile_input_is_refused(built, capsys):
    code, out, err = run_cli(capsys, "segments", "preview", "customer_grade = 'vvip'",
                             "--warehouse", str(built.warehouse))
    assert code == 1
    assert "offset 17: 'vvip' is not a value of customer_grade" in err
    for hostile in ("customer_grade = 'vip'' or ''1''=''1'",
                    "in_segment('x''); drop table marts.segment_members; --')",
                    "browsing_interest has 'books'' or 1=1 --'"):
        code, out, err = run_cli(capsys, "segments", "preview", hostile, "--json",
                                 "--warehouse", str(built.warehouse))
        assert code == 1 and ("is not a value" in err or "unknown segment" in err)
        assert json.loads(out)["error"]
    assert query(built.warehouse, "select count(*) from marts.segment_members")[0][0] > 0


# --- export -----------------------------------------------------------------------------------


def test_export_without_personal_data_leaves_out_the_holdout_and_is_logged(built, tmp_path,
                                                                         capsys, monkeypatch):
    log = tmp_path / "exports.jsonl"
    monkeypatch.setenv("CRM_SEGMENT_EXPORT_LOG", str(log))
    out = tmp_path / "prospects.csv"
    code, stdout, _ = run_cli(capsys, "segments", "export", "prospects", "--format", "csv",
                              "--out", str(out), "--warehouse", str(built.warehouse))
    assert code == 0 and "No personal data" in stdout and "left out" in stdout
    table = pa_csv.read_csv(out)
    treated = sorted(c for (s, c), h in built.rerun_holdouts.items() if s == "prospects" and not h)
    assert sorted(table.column("customer_id").to_pylist()) == treated
    assert not {"account_name", "contact_name", "email", "phone"} & set(table.column_names)
    assert "@example.com" not in out.read_text()
    [record] = [json.loads(line) for line in log.read_text().splitlines()]
    assert record["segment_code"] == "prospects" and record["personal_data"] is False
    assert record["rows"] == len(treated) and record["path"] == str(out.resolve())
    assert record["user"] and record["exported_at"] and record["as_of_date"] == AS_OF


def test_export_with_personal_data_needs_its_flag_says_so_and_logs_no_value(built, tmp_path,
                                                                          capsys, monkeypatch):
    log = tmp_path / "exports.jsonl"
    monkeypatch.setenv("CRM_SEGMENT_EXPORT_LOG", str(log))
    out = tmp_path / "vip.parquet"
    code, stdout, _ = run_cli(capsys, "segments", "export", "vip", "--format", "parquet",
                              "--out", str(out), "--include-personal-data", "--include-holdout",
                              "--warehouse", str(built.warehouse))
    assert code == 0 and "PERSONAL DATA" in stdout
    rows = pq.read_table(out).to_pylist()
    assert sorted((r["customer_id"], r["contact_id"], r["email"]) for r in rows) == [
        ("a1", "k1", "boss@a1.cn"), ("a1", "k2", "shared@mail.cn")]
    assert rows[0]["account_name"] == "杭州精工机械有限公司"
    [record] = [json.loads(line) for line in log.read_text().splitlines()]
    assert record["personal_data"] is True
    assert record["personal_columns"] == ["account_name", "contact_name", "email", "phone"]
    text = log.read_text()
    assert "boss@a1.cn" not in text and "杭州精工" not in text


def test_export_of_an_unknown_segment_writes_and_logs_nothing(built, tmp_path, capsys,
                                                              monkeypatch):
    log = tmp_path / "exports.jsonl"
    monkeypatch.setenv("CRM_SEGMENT_EXPORT_LOG", str(log))
    code, _, err = run_cli(capsys, "segments", "export", "nope", "--format", "csv", "--out",
                           str(tmp_path / "x.csv"), "--warehouse", str(built.warehouse))
    assert code == 1 and "unknown segment 'nope'" in err and "prospects" in err
    assert not (tmp_path / "x.csv").exists() and not log.exists()


# --- Dagster ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def orchestration(built, tmp_path_factory):
    """The code location with this file's segments."""
    saved = os.environ.get("CRM_DAGSTER_DBT_TARGET")
    os.environ["CRM_DAGSTER_DBT_TARGET"] = saved or str(tmp_path_factory.mktemp("dbt_target"))
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    try:
        from orchestration import definitions, resources, segments
    finally:
        if saved is None:
            os.environ.pop("CRM_DAGSTER_DBT_TARGET", None)
    warehouse = resources.Warehouse(raw_dir=str(built.landing.root),
                                    published_path=str(built.warehouse),
                                    candidate_path=str(built.root / "candidate.duckdb"))
    file = load_segments(built.root / "segments.yml")
    return SimpleNamespace(defs=definitions.build_definitions(
        warehouse=warehouse, segments=segments.build_segment_definitions(file)))


def test_each_segment_is_an_asset_downstream_of_the_tags_it_reads(orchestration):
    from dagster import Definitions

    Definitions.validate_loadable(orchestration.defs)  # what `dagster definitions validate` does
    graph = orchestration.defs.resolve_asset_graph()
    parents = {
        tuple(key.path): {"/".join(p.path) for p in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys() if key.path[0] == "segments"
    }
    assert set(parents) == {("segments", code) for code in EXPECTED}
    assert parents[("segments", "vip")] == {
        "tags/tag_customer_grade", "marts/segment_members", "publish/warehouse"}
    assert parents[("segments", "vip_or_books_not_complaining")] == {
        "tags/tag_complaint_risk", "segments/vip", "segments/books_browsers",
        "marts/segment_members", "publish/warehouse"}
    assert parents[("segments", "p_rest")] >= {"segments/p_high_value", "segments/p_engaged"}
    assert "marts/customer_profile" in parents[("segments", "big_spenders")]
    # every cadence's job rebuilds the segment models after its tags
    daily = orchestration.defs.resolve_job_def("daily_tags").asset_layer.selected_asset_keys
    assert {("marts", "segment_members"), ("marts", "segment_catalog"),
            ("marts", "segment_membership_history")} <= {tuple(k.path) for k in daily}


def test_the_segments_job_records_member_counts(orchestration, built):
    from dagster import DagsterInstance

    with DagsterInstance.ephemeral() as instance:
        result = orchestration.defs.resolve_job_def("segments").execute_in_process(
            partition_key=AS_OF, instance=instance)
    assert result.success
    counts = {
        e.asset_key.path[-1]: e.event_specific_data.materialization.metadata["member_count"].value
        for e in result.get_asset_materialization_events()
    }
    assert counts == {code: len(customers) for code, customers in EXPECTED.items()}


def test_a_publish_triggers_the_segments_run_of_its_date(orchestration):
    from dagster import AssetMaterialization, DagsterInstance, build_sensor_context

    from orchestration.assets import PUBLISHED_KEY

    sensor = orchestration.defs.get_sensor_def("segments_after_publish")
    assert sensor.default_status.value == "RUNNING"
    with DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(
            AssetMaterialization(asset_key=PUBLISHED_KEY, partition=NEXT_DAY))
        context = build_sensor_context(instance=instance, definitions=orchestration.defs)
        [request] = sensor.evaluate_tick(context).run_requests
    assert request.partition_key == NEXT_DAY and sensor.job_name == "segments"
