"""Tag history (issue 19): marts.customer_tag_history, contact_tag_history, tag_transitions,
`crm-tags backfill`, and --full-refresh keeping what is kept over time.

One hand-made landing zone, a consumer shop of 90 customers (conftest.write_b2c_shop, fewer
than the gate's 100 for the swing check) delivered on D1, then a day's deliveries on D2 (a
ticket from every customer, two first purchases, a manual tag) and on D3 (more purchases, the
manual tag removed, another added). The files' mtimes are their delivery days.

- `seq`: D1, D2, D3 built, gated and published one after another on one warehouse;
- `fresh[D]`: a fresh warehouse built as of D alone from the whole landing zone: for D1 and D2
  dbt only (no gate), the tags and what they are built from; for D3 `ooo`'s first run is one;
- `ooo`: out of order: D3 published, then `backfill --from D1 --to D2` (there the later days'
  rows are "after the run date": 110 of the 119 tickets for D1, above the gate's 50% quarantine
  budget unless those rows are excused; the backfill's publishes show they are), then D2 run
  again with --full-refresh (nothing kept over time changes).
Done when: the tags the history says were valid on D equal fresh[D]'s marts.customer_tags,
row for row, in `seq` and in `ooo`; transitions sum to the history's period starts and ends.
"""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import duckdb
import pytest
from conftest import LandingZone, build_reference, gated_builds_running, query, ts, write_b2c_shop

from crm_tags.backfill import BackfillRefused, backfill, backfill_dates, check_dates
from crm_tags.build import DbtError
from crm_tags.cli import main
from crm_tags.quality.publish import build_and_publish

pytestmark = pytest.mark.slow

D1, D2, D3 = "2026-03-02", "2026-03-03", "2026-03-04"
DATES = [D1, D2, D3]
CUSTOMERS = 90

VALID_ON = """
    select customer_id, tag_code, tag_value from marts.customer_tag_history
    where valid_from <= date '{d}' and (valid_to is null or valid_to > date '{d}')
    order by all
"""
TAGS = "select customer_id, tag_code, tag_value from marts.customer_tags order by all"
HISTORY = ("select customer_id, tag_code, tag_value, evidence, valid_from, valid_to "
           "from marts.customer_tag_history order by all")
CONTACT_HISTORY = "select * from marts.contact_tag_history order by all"
# what is kept over time (full_refresh=false): its row counts
KEPT = " union all ".join(f"select '{t}', count(*) from {t}" for t in [
    "marts.customer_tag_history", "marts.contact_tag_history", "marts.tag_runs",
    "marts.segment_membership_history", "marts.segment_runs", "marts.ltv_model_fits"])


def _dated(paths: list[Path], day: str) -> None:
    stamp = dt.datetime.fromisoformat(day).replace(hour=6, tzinfo=dt.UTC).timestamp()
    for path in paths:
        os.utime(path, (stamp, stamp))


def deliver_day1(landing: LandingZone) -> None:
    before = set(landing.root.rglob("*.parquet")) if landing.root.exists() else set()
    write_b2c_shop(landing, D1, provinces=True, customers=CUSTOMERS)
    landing.deliver("crm/contacts", [
        {"contact_id": "k1", "account_id": "c000", "full_name": "王一", "decision_role": "decision maker",
         "updated_at": ts(D1, 300)},
        {"contact_id": "k2", "account_id": "c001", "full_name": "李二", "decision_role": "influencer",
         "updated_at": ts(D1, 300)},
    ])
    _dated(sorted(set(landing.root.rglob("*.parquet")) - before), D1)


def _order(order_id: str, customer: str, day: str, price: str) -> tuple[dict, dict]:
    return ({"order_id": order_id, "account_id": customer, "order_ts": ts(day, 0, hour=9),
             "status": "completed", "sales_channel": "online", "_ingested_at": ts(day, 0, hour=11)},
            {"order_id": order_id, "line_no": 1, "product_id": "p2", "quantity": 1,
             "unit_price": Decimal(price), "discount_amount": Decimal("0.00"),
             "unit_cost": Decimal("20.00")})


def deliver_day(landing: LandingZone, day: str) -> None:
    before = set(landing.root.rglob("*.parquet"))
    if day == D2:
        # a ticket from every customer: complaints from the first ten, the rest by phone
        landing.deliver("support/tickets", [
            {"ticket_id": f"d2t{i:03d}", "account_id": f"c{i:03d}",
             "channel": "phone" if i >= 10 else "online_chat",
             "ticket_type": "complaint" if i < 10 else "inquiry",
             "opened_at": ts(day, 0, hour=8), "satisfaction_score": 2 if i < 10 else 5}
            for i in range(CUSTOMERS)
        ])
        # c005 and c011 never bought: their first purchase (prospect -> new)
        orders, items = zip(_order("d2o1", "c005", day, "120.00"), _order("d2o2", "c011", day, "80.00"),
                            strict=True)
        landing.deliver("crm/manual_tags", [
            {"account_id": "c001", "tag_code": "key_account", "action": "add", "operator": "li",
             "operated_at": ts(day, 0, hour=9)}])
    else:
        # two more complaints from the first ten: three in the window, complaint-prone
        landing.deliver("support/tickets", [
            {"ticket_id": f"d3t{i:03d}{n}", "account_id": f"c{i:03d}", "channel": "online_chat",
             "ticket_type": "complaint", "opened_at": ts(day, 0, hour=8), "satisfaction_score": 1}
            for i in range(10) for n in "ab"
        ])
        orders, items = zip(_order("d3o1", "c005", day, "90.00"), _order("d3o2", "c017", day, "60.00"),
                            strict=True)
        landing.deliver("crm/manual_tags", [
            {"account_id": "c001", "tag_code": "key_account", "action": "remove", "operator": "li",
             "operated_at": ts(day, 0, hour=9)},
            {"account_id": "c002", "tag_code": "blacklist", "action": "add", "operator": "li",
             "operated_at": ts(day, 0, hour=9)}])
    landing.deliver("orders/orders", list(orders))
    landing.deliver("orders/order_items", list(items))
    _dated(sorted(set(landing.root.rglob("*.parquet")) - before), day)


def _publish(landing: LandingZone, warehouse: Path, day: str, root: Path, **options):
    result = build_and_publish(landing.root, warehouse, day, target_path=root / "target",
                               runtime_dir=root / "gx", **options)
    assert result.published, result.report()
    return result


def _state(warehouse: Path) -> SimpleNamespace:
    return SimpleNamespace(
        history=query(warehouse, HISTORY),
        contacts=query(warehouse, CONTACT_HISTORY),
        valid={d: query(warehouse, VALID_ON.format(d=d)) for d in DATES},
        runs=query(warehouse, "select tag_code, as_of_date from marts.tag_runs order by all"),
        transitions=query(warehouse, "select * from marts.tag_transitions order by all"),
        tags=query(warehouse, TAGS),
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> SimpleNamespace:
    # the seven gated builds run the history models' data tests (only this file builds several
    # run dates on one warehouse), not the others (test_warehouse.py, test_quality_gate.py)
    with gated_builds_running("path:models/marts/history"):
        return _build_all(tmp_path_factory.mktemp("history"))


def _build_all(root: Path) -> SimpleNamespace:
    landing = LandingZone(root / "raw")
    state = SimpleNamespace(root=root, landing=landing)
    deliver_day1(landing)
    # one after another on one warehouse, a day's deliveries between the runs
    seq = root / "seq" / "warehouse.duckdb"
    seq.parent.mkdir()
    for day in DATES:
        if day != D1:
            deliver_day(landing, day)
        _publish(landing, seq, day, root / "seq")
        if day == D1:
            state.seq_d1 = _state(seq)
    state.seq = _state(seq)
    # a fresh warehouse per date, built as of that date alone from the whole landing zone: the
    # reference. Out of order, the latest date first on a new warehouse: the fresh one of D3.
    ooo = root / "ooo" / "warehouse.duckdb"
    ooo.parent.mkdir()
    _publish(landing, ooo, D3, root / "ooo")
    state.fresh = {D3: query(ooo, TAGS)}
    # the others: dbt alone (no gate, no publish, no data tests), only the tags and their inputs
    for day in [D1, D2]:
        fresh = root / f"fresh_{day}" / "warehouse.duckdb"
        build_reference(landing.root, fresh, day, root / "fresh_target", select="+customer_tags")
        state.fresh[day] = query(fresh, TAGS)
    # then a backfill of the earlier dates
    state.backfilled = backfill(landing.root, ooo, dt.date.fromisoformat(D1), dt.date.fromisoformat(D2),
                                target_path=root / "ooo" / "target", runtime_dir=root / "ooo" / "gx")
    state.ooo = _state(ooo)
    # a date run again (the middle one) changes nothing, even with --full-refresh, which
    # rebuilds everything from the deliveries but what is kept over time (one run for both)
    state.kept = query(ooo, KEPT)
    _publish(landing, ooo, D2, root / "ooo", full_refresh=True)
    state.ooo_rerun = _state(ooo)
    state.kept_after_rerun = query(ooo, KEPT)
    state.ooo_warehouse = ooo
    return state


# --- done when ---------------------------------------------------------------------------------

@pytest.mark.parametrize("day", DATES)
def test_history_valid_on_each_date_equals_a_fresh_build_as_of_it(built, day):
    assert built.fresh[day], "the fresh build tagged nobody"
    assert built.seq.valid[day] == built.fresh[day]


@pytest.mark.parametrize("day", DATES)
def test_a_backfill_out_of_order_gives_the_same_tags_on_each_date(built, day):
    assert all(result.published for result in built.backfilled)
    assert [str(r.gate.run_date) for r in built.backfilled] == [D1, D2]
    assert built.ooo.valid[day] == built.fresh[day]


def test_out_of_order_gives_the_same_history_as_in_order(built):
    # the periods, their evidence (of the run that started each) and the runs
    assert built.ooo.history == built.seq.history
    assert built.ooo.contacts == built.seq.contacts
    assert built.ooo.runs == built.seq.runs
    assert built.ooo.transitions == built.seq.transitions


def test_a_date_run_again_changes_nothing(built):
    assert built.ooo_rerun.history == built.ooo.history
    assert built.ooo_rerun.runs == built.ooo.runs


# --- what the history holds --------------------------------------------------------------------

def test_only_changes_are_stored(built):
    # a value that held over the three runs is one row from D1, still open
    d1 = dt.date.fromisoformat(D1)
    d1_rows = {(c, t, v) for c, t, v, _, start, end in built.seq.history if start == d1 and end is None}
    held = set(built.seq.valid[D1]) & set(built.seq.valid[D2]) & set(built.seq.valid[D3])
    assert held and held <= d1_rows
    # and the history is as long as the first run plus each later period
    later = sum(1 for row in built.seq.history if row[4] != d1)
    assert len(built.seq.history) == len(built.seq_d1.history) + later


def test_hand_worked_periods(built):
    d1, d2, d3 = map(dt.date.fromisoformat, DATES)
    periods = {}
    for customer, tag, value, _evidence, start, end in built.seq.history:
        periods.setdefault((customer, tag), []).append((value, start, end))
    # a first purchase on D2: prospect until then, new from it
    assert periods[("c005", "lifecycle_stage")] == [("new", d2, None), ("prospect", d1, d2)]
    assert periods[("c017", "lifecycle_stage")][-1][1:] == (d1, d3)
    # a manual tag added on D2 and removed on D3 (multi-valued: its own period)
    assert periods[("c001", "manual")] == [("key_account", d2, d3)]
    assert periods[("c002", "manual")] == [("blacklist", d3, None)]
    # a complaint on D2, two on D3: complaint-prone from D3
    assert periods[("c000", "complaint_risk")] == [("complaint_prone", d3, None)]
    # the latest period's evidence is the run's that started it
    evidence = {(c, t, v, s): e for c, t, v, e, s, _ in built.seq.history}
    assert "1" in evidence[("c005", "purchase_frequency", "low", d2)]


def test_current_periods_equal_customer_tags(built):
    assert built.seq.valid[D3] == built.seq.tags
    current = sorted((c, t, v) for c, t, v, _, _, end in built.seq.history if end is None)
    assert current == built.seq.tags


def test_contact_history_keeps_contact_tags(built):
    d1 = dt.date.fromisoformat(D1)
    assert [(r[0], r[1], r[2], r[-2], r[-1]) for r in built.seq.contacts] == [
        ("k1", "decision_role", "decision_maker", d1, None),
        ("k2", "decision_role", "influencer", d1, None)]


def test_transitions_sum_to_the_history(built):
    d1 = dt.date.fromisoformat(D1)
    moves = {(d, t, f, v): n for d, t, f, v, n in built.seq.transitions}
    starts, ends = {}, {}
    for _c, tag, value, _e, start, end in built.seq.history:
        starts[(start, tag, value)] = starts.get((start, tag, value), 0) + 1
        if end is not None:
            ends[(end, tag, value)] = ends.get((end, tag, value), 0) + 1
    into, out_of = {}, {}
    for (day, tag, source, target), n in moves.items():
        if target is not None:
            into[(day, tag, target)] = into.get((day, tag, target), 0) + n
        if source is not None:
            out_of[(day, tag, source)] = out_of.get((day, tag, source), 0) + n
    assert into == starts
    assert out_of == ends
    # the hand-worked moves
    d2, d3 = map(dt.date.fromisoformat, [D2, D3])
    assert moves[(d2, "lifecycle_stage", "prospect", "new")] == 2
    assert moves[(d2, "manual", None, "key_account")] == 1
    assert moves[(d3, "manual", "key_account", None)] == 1
    assert moves[(d3, "complaint_risk", None, "complaint_prone")] == 10
    # the first run: everyone tagged entered
    assert sum(n for (d, t, f, _), n in moves.items() if d == d1 and t == "lifecycle_stage") == CUSTOMERS
    assert all(f is None for (d, _, f, _) in moves if d == d1)


# --- backfill ------------------------------------------------------------------------------------

def test_backfill_dates_every_day_week_month():
    date = dt.date.fromisoformat
    assert backfill_dates(date("2026-01-30"), date("2026-02-01")) == [
        date("2026-01-30"), date("2026-01-31"), date("2026-02-01")]
    assert backfill_dates(date("2026-01-01"), date("2026-01-20"), "week") == [
        date("2026-01-01"), date("2026-01-08"), date("2026-01-15")]
    assert backfill_dates(date("2026-01-31"), date("2026-04-30"), "month") == [
        date("2026-01-31"), date("2026-02-28"), date("2026-03-31"), date("2026-04-30")]
    with pytest.raises(BackfillRefused, match="after --to"):
        backfill_dates(date("2026-02-01"), date("2026-01-01"))


def test_backfill_refuses_dates_before_the_first_delivery_or_after_today(built, capsys):
    with pytest.raises(BackfillRefused, match=r"2026-03-01 is before the landing zone's first delivery \(2026-03-02"):
        check_dates(built.landing.root, [dt.date(2026, 3, 1), dt.date(2026, 3, 2)])
    with pytest.raises(BackfillRefused, match=r"2026-03-05 is after today \(2026-03-04\)"):
        check_dates(built.landing.root, [dt.date(2026, 3, 5)], today=dt.date(2026, 3, 4))
    # the CLI refuses before building anything: the warehouse is not even created
    warehouse = built.root / "refused" / "warehouse.duckdb"
    code = main(["backfill", "--from", "2026-02-20", "--to", D2, "--raw-dir", str(built.landing.root),
                 "--warehouse", str(warehouse)])
    assert code == 2
    assert "Backfill refused: Run date 2026-02-20 is before" in capsys.readouterr().err
    assert not warehouse.parent.exists()


# --- write-audit-publish, full refresh, another version's table -------------------------------

def test_full_refresh_keeps_what_is_kept_over_time(built):
    # the middle date run again with --full-refresh (the fixture)
    assert all(n > 0 for _, n in built.kept), built.kept
    assert built.kept_after_rerun == built.kept
    assert built.ooo_rerun.history == built.ooo.history == built.seq.history
    # and what it rebuilt is the date's: the tags of a fresh build as of it
    assert built.ooo_rerun.tags == built.fresh[D2]


def test_a_history_table_of_another_version_stops_the_run_naming_it(built, tmp_path):
    warehouse = tmp_path / "old" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    warehouse.write_bytes(built.ooo_warehouse.read_bytes())
    with duckdb.connect(str(warehouse)) as con:
        con.execute("alter table marts.customer_tag_history drop column evidence")
        rows = con.execute("select count(*) from marts.customer_tag_history").fetchone()
    # the check is the history model's own (macros/history.sql): a build of it alone meets it
    with pytest.raises(DbtError, match=r"History table .*customer_tag_history.* lacks the column\(s\) evidence"):
        build_and_publish(built.landing.root, warehouse, D3, target_path=tmp_path / "target",
                          runtime_dir=tmp_path / "gx", select="customer_tag_history")
    # never rebuilt silently: the published file still has the old table as it was
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from marts.customer_tag_history").fetchone() == rows
