"""Personal data (docs/privacy.md): the BI file holds the marts only, its personal columns
pseudonymised with the masking key; `crm-tags forget` clears a customer from everything BI can
reach and from the exports, and a full rebuild keeps them forgotten; no key, no publish."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import GENERATED_AS_OF, generated_shop, query, without_data_tests

from crm_tags.cli import main
from crm_tags.privacy import (
    PERSONAL_NAME,
    PrivacyError,
    bi_path,
    erasure_log_path,
    load_key,
    pseudonym,
)

AS_OF = GENERATED_AS_OF
NEXT_DAY = "2025-07-01"

# the personal columns of the landing zone (raw-sources.md): (table, column)
LANDING_PERSONAL = [
    ("crm/accounts", "account_name"),
    ("crm/contacts", "full_name"),
    ("crm/contacts", "email"),
    ("crm/contacts", "phone"),
    ("crm/manual_tags", "operator"),
    ("support/tickets", "requester_email"),
    ("campaigns/campaign_events", "recipient_email"),
    ("campaigns/web_events", "user_email"),
]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A generated landing zone and the warehouse (and BI file) published from it: a copy of
    conftest's generated_shop (shared with test_quality_gate.py and test_bi_readers.py)."""
    root, _ = generated_shop(tmp_path_factory)
    return root, root / "warehouse.duckdb"


def _build(root: Path, warehouse: Path, as_of: str, *extra: str) -> int:
    """`crm-tags build` of the shop's landing zone, without the dbt data tests: the shared
    shop's build ran them on the same deliveries, and the erasure (what is asserted) comes
    after dbt, before the gate, which still audits the candidate."""
    with without_data_tests():
        return main(["build", "--raw-dir", str(root / "raw"), "--warehouse", str(warehouse),
                     "--as-of", as_of, "--runtime-dir", str(root / "gx"), *extra])


def _landing_values(raw: Path) -> set[str]:
    """Every personal value of the landing zone, as delivered and normalised."""
    values: set[str] = set()
    with duckdb.connect() as con:
        for table, column in LANDING_PERSONAL:
            for (value,) in con.sql(f"select distinct {column} from read_parquet("
                                    f"'{raw}/{table}/*.parquet', union_by_name = true) "
                                    f"where {column} is not null").fetchall():
                values |= {value, value.strip(), value.strip().lower()}
    values.discard("")
    return values


def _every_value(path: Path, schemas: tuple[str, ...] | None = None) -> dict[str, set[str]]:
    """schema.table.column -> its distinct values as text, for every table of a file."""
    seen: dict[str, set[str]] = {}
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.sql("select table_schema, table_name, column_name from "
                          "information_schema.columns where table_catalog = current_database()"
                          ).fetchall()
        for schema, table, column in columns:
            if schemas and schema not in schemas:
                continue
            rows = con.sql(f'select distinct cast("{column}" as varchar) from '
                           f'"{schema}"."{table}"').fetchall()
            seen[f"{schema}.{table}.{column}"] = {r[0] for r in rows if r[0] is not None}
    return seen


def _holding(path: Path, values: set[str], schemas: tuple[str, ...] | None = None) -> dict:
    found = {}
    for name, column_values in _every_value(path, schemas).items():
        hits = column_values & values
        if hits:
            found[name] = sorted(hits)[:3]
    return found


def test_the_bi_file_holds_the_marts_only_without_a_personal_value(published):
    root, warehouse = published
    bi = bi_path(warehouse)
    assert bi == warehouse.with_name("warehouse.bi.duckdb")
    schemas = {r[0] for r in query(bi, "select distinct table_schema from information_schema.tables")}
    assert schemas == {"marts"}
    tables = {r[0] for r in query(bi, "select table_name from information_schema.tables")}
    assert {"customer_profile", "customer_tags", "contact_tags", "tag_catalog", "segment_members",
            "segment_catalog", "ltv_model_fits"} <= tables
    personal = _landing_values(root / "raw")
    assert _holding(bi, personal) == {}
    # the scan can fail: the full warehouse (staging, core) holds them
    assert {"core.dim_contacts.email", "core.dim_customers.account_name"} <= \
        set(_holding(warehouse, personal, ("core",)))


def test_personal_columns_are_keyed_hashes_stable_for_joins(published):
    _, warehouse = published
    key = load_key()
    name, customer = query(warehouse, "select account_name, customer_id from "
                                      "marts.customer_profile order by customer_id limit 1")[0]
    masked = query(bi_path(warehouse), "select account_name from marts.customer_profile "
                                       f"where customer_id = '{customer}'")[0][0]
    assert masked == pseudonym(key, name) and len(masked) == 32 and masked != name
    # another key gives other pseudonyms: without the key they cannot be recomputed
    assert pseudonym(b"another key", name) != masked
    # the same person's name gives the same pseudonym wherever it appears
    assert pseudonym(key, f"  {name} ") == masked
    assert pseudonym(key, " A@B.cn", "email") == pseudonym(key, "a@b.cn", "email")


def test_a_deployment_may_let_bi_read_a_column_in_clear(published, tmp_path, monkeypatch):
    from crm_tags.privacy import write_bi_file

    _, warehouse = published
    monkeypatch.setenv("CRM_BI_CLEAR_COLUMNS", "customer_profile.account_name")
    summary = write_bi_file(warehouse, tmp_path / "bi.duckdb", load_key())
    assert summary.in_clear == ["customer_profile.account_name"]
    assert "contact_tags.evidence" in summary.pseudonymised
    assert query(tmp_path / "bi.duckdb", "select account_name from marts.customer_profile "
                                         "order by customer_id limit 1") == \
        query(warehouse, "select account_name from marts.customer_profile order by customer_id "
                         "limit 1")


def _a_member_with_emails(warehouse: Path) -> tuple[str, str, set[str]]:
    customer, segment = query(warehouse, """
        select m.customer_id, any_value(m.segment_code) from marts.segment_members as m
        join core.dim_contacts as c on c.customer_id = m.customer_id
        join marts.contact_tags as t on t.customer_id = m.customer_id
        where c.email is not null and not m.is_holdout
        group by m.customer_id order by m.customer_id limit 1
    """)[0]
    emails = {r[0] for r in query(warehouse, "select distinct lower(trim(email)) from "
                                             "staging.base_crm__contacts where account_id = "
                                             f"'{customer}' and email is not null")}
    return customer, segment, emails


def test_forget_clears_the_customer_from_everything_bi_reads_and_the_exports(published, tmp_path,
                                                                             capsys):
    root, source = published
    # a warehouse of its own: the other tests read the published one
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse.write_bytes(source.read_bytes())
    bi_path(warehouse).write_bytes(bi_path(source).read_bytes())
    customer, segment, emails = _a_member_with_emails(warehouse)
    assert emails
    names = {r[0] for r in query(warehouse, "select full_name from staging.base_crm__contacts "
                                            f"where account_id = '{customer}'")}

    assert main(["forget", customer, "--reason", "GDPR art. 17 request, ticket 4711",
                 "--warehouse", str(warehouse)]) == 0
    assert "recorded" in capsys.readouterr().out
    log = erasure_log_path(warehouse)
    assert log == tmp_path / "erasure_requests.jsonl"
    [request] = [json.loads(line) for line in log.read_text().splitlines()]
    assert request["customer_id"] == customer
    assert request["reason"] == "GDPR art. 17 request, ticket 4711"
    assert request["requested_by"] and request["requested_at"] and request["request_id"]
    # who, when, why: no name, email or phone of the customer
    assert not {v for v in request.values() if v in emails | names}

    forgotten = {customer} | emails
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("crm_tags.quality.gate.DEFAULT_RUNTIME_DIR", root / "gx")
        # before the next run, nothing has changed yet
        assert _holding(bi_path(warehouse), {customer})
        assert _build(root, warehouse, NEXT_DAY) == 0
    out = capsys.readouterr().out
    assert "Erasure log: 1 customer(s) forgotten" in out
    _assert_forgotten(warehouse, forgotten, segment, tmp_path)

    # a full rebuild from the landing zone, which still holds their rows, keeps them forgotten
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("crm_tags.quality.gate.DEFAULT_RUNTIME_DIR", root / "gx")
        assert _build(root, warehouse, NEXT_DAY, "--full-refresh") == 0
    assert query(warehouse, "select count(*) from staging.base_crm__accounts where account_id = "
                            f"'{customer}'")[0][0] >= 1
    _assert_forgotten(warehouse, forgotten, segment, tmp_path)


def _assert_forgotten(warehouse: Path, forgotten: set[str], segment: str, tmp_path: Path):
    assert _holding(bi_path(warehouse), forgotten) == {}
    # the published counts are those of the published members (the erasure ran after dbt)
    for path in (warehouse, bi_path(warehouse)):
        counts = query(path, f"""
            select catalog.member_count, catalog.share, runs.member_count,
                (select count(*) from marts.segment_members where segment_code = '{segment}'),
                (select count(*) from marts.customer_profile)
            from marts.segment_catalog as catalog
            join marts.segment_runs as runs
                on runs.segment_code = catalog.segment_code
                and runs.as_of_date = catalog.as_of_date
            where catalog.segment_code = '{segment}'
        """)
        [(catalog_count, share, run_count, members, customers)] = counts
        assert catalog_count == run_count == members > 0, path
        assert abs(float(share) - members / customers) < 1e-9, path
    # the published warehouse's marts, tags and segments too (not only what BI reads)
    assert _holding(warehouse, forgotten, ("marts", "tags")) == {}
    out = tmp_path / "export.csv"
    assert main(["segments", "export", segment, "--format", "csv", "--out", str(out),
                 "--include-personal-data", "--include-holdout", "--warehouse",
                 str(warehouse)]) == 0
    text = out.read_text()
    assert text.count("\n") > 1  # the segment still has members
    assert not [v for v in forgotten if v in text.lower()]


def test_forget_reports_an_unknown_customer_and_records_nothing(published, tmp_path, capsys):
    _, source = published
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse.write_bytes(source.read_bytes())
    assert main(["forget", "NO_SUCH_CUSTOMER", "--warehouse", str(warehouse)]) == 1
    err = capsys.readouterr().err
    assert "unknown customer 'NO_SUCH_CUSTOMER'" in err and "nothing recorded" in err
    assert not erasure_log_path(warehouse).exists()
    customer = query(warehouse, "select min(customer_id) from marts.customer_profile")[0][0]
    assert main(["forget", customer, "--warehouse", str(warehouse)]) == 0
    assert main(["forget", customer, "--warehouse", str(warehouse)]) == 1
    assert f"customer '{customer}' is already forgotten" in capsys.readouterr().err
    assert len(erasure_log_path(warehouse).read_text().splitlines()) == 1
    assert main(["forget", "--list", "--warehouse", str(warehouse)]) == 0
    assert customer in capsys.readouterr().out


# --- publishing without a key, unclassified columns: small hand-made candidates --------------

def _candidate(path: Path, column: str = "account_name") -> Path:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema marts")
        con.execute(f"create table marts.customer_profile as select 'c1' as customer_id, "
                    f"'张伟' as {column}")
        con.execute("create schema staging")
        con.execute("create table staging.stg_secret as select 'x@y.cn' as email")
        con.execute("create schema audit")
        con.execute("create table audit.privacy_columns as select 'marts' as schema_name, "
                    "'customer_profile' as table_name, 'account_name' as column_name, "
                    "'name' as personal_kind, cast(null as varchar) as erasure_kind")
    return path


@pytest.fixture
def no_key(tmp_path, monkeypatch):
    monkeypatch.delenv("CRM_MASKING_KEY", raising=False)
    monkeypatch.delenv("CRM_MASKING_KEY_FILE", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))


def test_a_missing_masking_key_stops_the_publish(tmp_path, no_key):
    from crm_tags.quality.publish import publish

    warehouse = _candidate(tmp_path / "warehouse.duckdb")
    before = warehouse.read_bytes()
    candidate = _candidate(tmp_path / "candidate.duckdb")
    with pytest.raises(PrivacyError) as refused:
        publish(candidate, warehouse)
    assert str(refused.value).startswith("No masking key: set $CRM_MASKING_KEY or write one to "
                                         f"{tmp_path / 'config' / 'crm-tags' / 'masking.key'}")
    assert "nothing was published" in str(refused.value)
    assert warehouse.read_bytes() == before and candidate.exists()
    assert not bi_path(warehouse).exists()


def test_the_build_says_so_before_building(tmp_path, no_key, capsys):
    code = main(["build", "--raw-dir", str(tmp_path / "raw"), "--warehouse",
                 str(tmp_path / "w.duckdb"), "--as-of", AS_OF])
    err = capsys.readouterr().err
    assert code == 1 and "No masking key" in err and "NOT published" in err
    assert not list(tmp_path.glob("*.duckdb")) and not list(tmp_path.glob(".*.duckdb"))


def test_the_demo_makes_a_key_outside_the_repository(tmp_path, no_key):
    from crm_tags import PROJECT_DIR
    from crm_tags.privacy import ensure_key

    path = ensure_key()
    assert path == tmp_path / "config" / "crm-tags" / "masking.key"
    assert not path.is_relative_to(PROJECT_DIR)
    assert oct(path.stat().st_mode & 0o777) == "0o600" and len(load_key()) == 64
    assert ensure_key() is None  # kept: the pseudonyms stay stable


def test_an_unclassified_column_that_looks_personal_is_not_published(tmp_path):
    from crm_tags.quality.publish import publish

    candidate = _candidate(tmp_path / "candidate.duckdb", column="contact_email")
    with pytest.raises(PrivacyError, match=r"marts\.customer_profile\.contact_email look "
                                           "personal by their name"):
        publish(candidate, tmp_path / "warehouse.duckdb")
    assert not (tmp_path / "warehouse.duckdb").exists()


HOLDER = r"""
import sys
import duckdb

con = duckdb.connect(sys.argv[1], read_only=True)
print(con.execute("select account_name from marts.customer_profile").fetchone()[0], flush=True)
sys.stdin.read()
print(con.execute("select account_name from marts.customer_profile").fetchone()[0], flush=True)
"""


def test_the_bi_file_is_swapped_while_a_bi_tool_holds_it(tmp_path):
    """Like the warehouse: a reader holding the BI file keeps reading it, the publish goes on."""
    from crm_tags.quality.publish import publish

    warehouse = tmp_path / "warehouse.duckdb"
    publish(_candidate(tmp_path / "first.duckdb"), warehouse)
    bi = bi_path(warehouse)
    reader = subprocess.Popen([sys.executable, "-c", HOLDER, str(bi)], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    first = reader.stdout.readline().strip()
    inode = os.stat(bi).st_ino
    second = _candidate(tmp_path / "second.duckdb")
    with duckdb.connect(str(second)) as con:
        con.execute("update marts.customer_profile set account_name = '李娜'")
    try:
        publish(second, warehouse)
    finally:
        out, _ = reader.communicate("")
    assert out.strip() == first == pseudonym(load_key(), "张伟")  # the file it opened
    assert os.stat(bi).st_ino != inode
    assert query(bi, "select account_name from marts.customer_profile") == \
        [(pseudonym(load_key(), "李娜"),)]
    assert not list(tmp_path.glob(".*partial*")) and not list(tmp_path.glob(".*candidate*"))


def test_personal_name_pattern():
    assert PERSONAL_NAME.search("account_name") and PERSONAL_NAME.search("requester_email")
    assert PERSONAL_NAME.search("birth_date") and PERSONAL_NAME.search("phone")
    assert not PERSONAL_NAME.search("tag_value_label_en") and not PERSONAL_NAME.search("tag_code")


# --- the classification: every column that looks personal is classified ---------------------

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[a-z]{2,}", re.IGNORECASE)
PHONE = re.compile(r"^\+?[0-9][0-9 \-]{9,}$")
STAGED = re.compile(r"^(?:base|stg)_(?P<system>[a-z]+)__(?P<table>[a-z_]+)$")


def _looks_personal(con, schema, table, column, data_type, landing: set[str]) -> str | None:
    if PERSONAL_NAME.search(column.lower()):
        return "its name"
    if data_type != "VARCHAR":
        return None
    values = {r[0] for r in con.sql(f'select distinct "{column}" from "{schema}"."{table}" '
                                    f'where "{column}" is not null limit 500').fetchall()}
    if any(EMAIL.search(v) for v in values):
        return "an email in its values"
    if any(PHONE.match(v) for v in values):
        return "a phone number in its values"
    if values & landing:
        return "a landing-zone name in its values"
    return None


def test_every_column_that_looks_personal_is_classified(published):
    """By name or by content sampled from the built warehouse, in every schema: a new column
    that looks personal fails here until its YAML says `meta: {personal: <kind>}` (or `none`).
    Staging relations carry their source's columns: the source's classification covers them."""
    root, warehouse = published
    landing = _landing_values(root / "raw")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        classified = {(s, t, c) for s, t, c, p in con.sql(
            "select schema_name, table_name, column_name, personal_kind "
            "from audit.privacy_columns where personal_kind is not null").fetchall()}
        columns = con.sql("select table_schema, table_name, column_name, data_type from "
                          "information_schema.columns where table_catalog = current_database() "
                          "and table_schema <> 'raw_landing'").fetchall()
        missing = []
        for schema, table, column, data_type in columns:
            staged = STAGED.match(table) if schema == "staging" else None
            source = (f"raw_{staged['system']}", staged["table"], column) if staged else None
            if (schema, table, column) in classified or source in classified:
                continue
            why = _looks_personal(con, schema, table, column, data_type, landing)
            if why:
                missing.append(f"{schema}.{table}.{column} ({why})")
    assert missing == []
    # and the check finds a column: the landing zone's contacts are classified, not guessed
    assert ("raw_crm", "contacts", "email") in classified
    assert ("core", "dim_contacts", "phone") in classified
