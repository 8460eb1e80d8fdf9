"""Personal data: what BI may read, pseudonyms, and erasure (`crm-tags forget`). docs/privacy.md.

- Classification: the model and source YAML say which columns hold personal data
  (`meta: {personal: name|email|phone|birth_date|gender|free_text}`, or `personal: none` for a
  column whose name only looks personal) and which column identifies a customer for erasure
  (model `meta: {erasure_key: customer_id}`, or `erasure_keys: {column: customer|contact|email}`).
  dbt writes both into audit.privacy_columns (models/audit/privacy_columns.sql), so the publish
  step reads them from the file it publishes.
- The BI file: at publish, `<warehouse>.bi.duckdb` is written from the candidate with the schema
  `marts` only; every personal column there is replaced by a keyed hash (HMAC-SHA256 with the
  masking key, the same value giving the same pseudonym in every table, so joins still work)
  unless the deployment opts the column in ($CRM_BI_CLEAR_COLUMNS=table.column,...). The masking
  key never lives in the repository: $CRM_MASKING_KEY, or the file $CRM_MASKING_KEY_FILE
  (default ~/.config/crm-tags/masking.key). No key, no publish.
- Erasure: `crm-tags forget CUSTOMER_ID --reason TEXT` appends a request (who, when, why, the
  customer id; no name, email or phone) to the erasure log beside the warehouse
  (erasure_requests.jsonl, or $CRM_ERASURE_LOG), outside the warehouse file: a full rebuild
  reads it again. Every publish then deletes the customer, their contacts and their emails from
  every table whose model declares an erasure key (the tag marts, the tags, the segments and
  their history), before the BI file is written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import sys
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
from duckdb.sqltypes import VARCHAR

KEY_ENV = "CRM_MASKING_KEY"
KEY_FILE_ENV = "CRM_MASKING_KEY_FILE"
CLEAR_COLUMNS_ENV = "CRM_BI_CLEAR_COLUMNS"
ERASURE_LOG_ENV = "CRM_ERASURE_LOG"
CLASSIFICATION_TABLE = "audit.privacy_columns"
BI_SCHEMAS = ("marts",)  # what BI reads: the tag marts, segments, catalog, the LTV card
ERASURE_KINDS = ("customer", "contact", "email")
PERSONAL_KINDS = ("name", "email", "phone", "birth_date", "gender", "free_text")

# A column whose name says it may hold personal data (tests and the publish check it is
# classified, as personal or as `personal: none`).
PERSONAL_NAME = re.compile(
    r"(^|_)(name|names|email|emails|mail|phone|mobile|tel|birth|birthday|birth_date|dob|gender|"
    r"sex|address|id_card|passport|operator|requester|recipient|user_email)(_|$)")


class PrivacyError(RuntimeError):
    """Publishing would expose personal data (no masking key, an unclassified column)."""


class MaskingKeyMissing(PrivacyError):
    pass


class ForgetError(ValueError):
    """An erasure request that cannot be recorded (unknown customer, no warehouse)."""


# --- the masking key -----------------------------------------------------------------------

def default_key_file() -> Path:
    config = os.environ.get("XDG_CONFIG_HOME", "").strip() or str(Path.home() / ".config")
    return Path(config) / "crm-tags" / "masking.key"


def key_file() -> Path:
    configured = os.environ.get(KEY_FILE_ENV, "").strip()
    return Path(configured).expanduser() if configured else default_key_file()


def load_key() -> bytes:
    """The masking key: $CRM_MASKING_KEY, else the key file. Raises MaskingKeyMissing."""
    value = os.environ.get(KEY_ENV, "").strip()
    if value:
        return value.encode()
    path = key_file()
    if path.exists():
        text = path.read_text(encoding="utf-8").strip()
        if text:
            return text.encode()
    raise MaskingKeyMissing(
        f"No masking key: set ${KEY_ENV} or write one to {path} (${KEY_FILE_ENV} names another "
        "file), e.g. `python -c \"import secrets; print(secrets.token_hex(32))\" > "
        f"{path}`; keep it out of the repository. Without it the personal columns BI reads "
        "cannot be pseudonymised, so nothing was published.")


def ensure_key() -> Path | None:
    """For the demo: a random key in the key file when none is configured; returns the file it
    wrote (None when a key was already there)."""
    try:
        load_key()
        return None
    except MaskingKeyMissing:
        pass
    path = key_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return path


def normalise(value: object, kind: str | None = None) -> str:
    text = str(value).strip()
    if kind == "email":
        return text.lower()
    if kind == "phone":
        return re.sub(r"[^0-9+]", "", text)
    return text


def pseudonym(key: bytes, value: object, kind: str | None = None) -> str | None:
    """HMAC-SHA256 of the normalised value, 32 hex digits; None stays None."""
    if value is None:
        return None
    digest = hmac.new(key, normalise(value, kind).encode(), hashlib.sha256).hexdigest()
    return digest[:32]


# --- classification ------------------------------------------------------------------------

@dataclass(frozen=True)
class Column:
    schema: str
    table: str
    column: str
    personal: str | None  # a PERSONAL_KINDS value, or None
    erasure: str | None  # an ERASURE_KINDS value, or None

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


def read_classification(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> list[Column]:
    prefix = f"{catalog}." if catalog else ""
    try:
        rows = con.execute(
            f"select schema_name, table_name, column_name, personal_kind, erasure_kind "
            f"from {prefix}{CLASSIFICATION_TABLE}").fetchall()
    except duckdb.CatalogException:
        return []
    return [Column(s, t, c, p if p and p != "none" else None, e) for s, t, c, p, e in rows]


def clear_columns() -> set[str]:
    """Columns a deployment lets BI read in clear: $CRM_BI_CLEAR_COLUMNS=table.column,..."""
    raw = os.environ.get(CLEAR_COLUMNS_ENV, "")
    return {part.strip().lower() for part in raw.split(",") if part.strip()}


# --- erasure -------------------------------------------------------------------------------

def erasure_log_path(warehouse: Path) -> Path:
    configured = os.environ.get(ERASURE_LOG_ENV, "").strip()
    if configured:
        return Path(configured)
    warehouse = Path(warehouse).resolve()
    # the candidate (.warehouse.candidate.duckdb) sits beside the warehouse: the same log
    return warehouse.with_name("erasure_requests.jsonl")


@dataclass
class ErasureRequest:
    """One line of the erasure log: who asked to forget which customer, when and why."""

    request_id: str
    customer_id: str
    requested_at: str
    requested_by: str
    reason: str


def read_erasure_log(log: Path) -> list[dict]:
    if not Path(log).exists():
        return []
    return [json.loads(line) for line in Path(log).read_text(encoding="utf-8").splitlines()
            if line.strip()]


def forgotten_customers(log: Path) -> set[str]:
    return {str(r["customer_id"]) for r in read_erasure_log(log)}


_KNOWN_CUSTOMER = ("select count(*) from core.dim_customers where customer_id = ?",
                   "select count(*) from staging.base_crm__accounts where account_id = ?")


def _on_postgres() -> bool:
    from crm_tags.build import current_target

    return current_target() == "postgres"


def _known_customer_pg(customer_id: str) -> bool:
    import psycopg2

    from crm_tags.load import pg_connect_kwargs

    with psycopg2.connect(**pg_connect_kwargs()) as conn, conn.cursor() as cur:
        for sql in _KNOWN_CUSTOMER:
            schema, table = sql.split(" from ")[1].split(" ")[0].split(".")
            cur.execute("select count(*) from information_schema.tables where table_schema = %s"
                        " and table_name = %s", [schema, table])
            if cur.fetchone()[0]:
                cur.execute(sql.replace("?", "%s"), [customer_id])
                if cur.fetchone()[0]:
                    return True
    return False


def _known_customer(warehouse: Path, customer_id: str) -> bool:
    """In the published warehouse: a dimension row or any delivered version of the account."""
    if _on_postgres():
        return _known_customer_pg(customer_id)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for sql in _KNOWN_CUSTOMER:
            try:
                if con.execute(sql, [customer_id]).fetchone()[0]:
                    return True
            except duckdb.CatalogException:
                continue
    return False


def forget(warehouse: Path, customer_id: str, reason: str = "", *,
           log: Path | None = None) -> ErasureRequest:
    """Record an erasure request. Raises ForgetError for a customer the published warehouse
    does not know (nothing recorded) or one already forgotten."""
    warehouse = Path(warehouse)
    customer_id = customer_id.strip()
    log = Path(log or erasure_log_path(warehouse))
    if not customer_id:
        raise ForgetError("no customer id given: nothing recorded")
    if not warehouse.exists() and not _on_postgres():
        raise ForgetError(f"no published warehouse at {warehouse} to check customer "
                          f"{customer_id!r} against: build one first (crm-tags build)")
    for earlier in read_erasure_log(log):
        if earlier["customer_id"] == customer_id:
            raise ForgetError(
                f"customer {customer_id!r} is already forgotten (request {earlier['request_id']}"
                f" of {earlier['requested_at']} by {earlier['requested_by']}): nothing recorded")
    if not _known_customer(warehouse, customer_id):
        raise ForgetError(f"unknown customer {customer_id!r}: no account with that id in "
                          f"{warehouse} (core.dim_customers, staging.base_crm__accounts); "
                          "nothing recorded. Check the id (the CRM account_id).")
    request = ErasureRequest(
        request_id=uuid.uuid4().hex[:12],
        customer_id=customer_id,
        requested_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        requested_by=f"{getpass.getuser()}@{socket.gethostname()}",
        reason=reason.strip(),
    )
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(asdict(request), ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return request


def _relation_type(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> str | None:
    row = con.execute(
        "select table_type from information_schema.tables where table_schema = ? and "
        "table_name = ? and table_catalog = current_database()", [schema, table]).fetchone()
    return row[0] if row else None


# Who else a forgotten customer is: every version ever delivered of their contacts (an old email
# is theirs too). One home for DuckDB (here) and PostgreSQL (crm_tags.pg_publish); it runs once
# the customers are in the temporary table `forgotten (kind, value)`.
FORGOTTEN_CONTACTS_SQL = """
    insert into forgotten
    select distinct 'contact', contact_id from staging.base_crm__contacts
    where account_id in (select value from forgotten where kind = 'customer')
      and contact_id is not null
    union
    select distinct 'email', lower(trim(email)) from staging.base_crm__contacts
    where account_id in (select value from forgotten where kind = 'customer')
      and email is not null
"""


def erase_forgotten(con: duckdb.DuckDBPyConnection, customers: set[str]) -> dict[str, int]:
    """Delete the forgotten customers, their contacts and their contacts' emails from every
    table of `con` (the candidate) whose model declares an erasure key; rows deleted per table.
    Views need nothing: they read the tables."""
    if not customers:
        return {}
    con.execute("create or replace temp table forgotten (kind varchar, value varchar)")
    con.executemany("insert into forgotten values ('customer', ?)", [[c] for c in sorted(customers)])
    if _relation_type(con, "staging", "base_crm__contacts"):
        con.execute(FORGOTTEN_CONTACTS_SQL)
    deleted: dict[str, int] = {}
    for column in read_classification(con):
        if not column.erasure:
            continue
        if _relation_type(con, column.schema, column.table) != "BASE TABLE":
            continue
        value = f'"{column.column}"'
        value = f"lower(trim({value}))" if column.erasure == "email" else f"cast({value} as varchar)"
        count = con.execute(
            f'delete from "{column.schema}"."{column.table}" where {value} in '
            f"(select value from forgotten where kind = ?)", [column.erasure]).fetchone()[0]
        name = f"{column.schema}.{column.table}"
        deleted[name] = deleted.get(name, 0) + int(count)
    return deleted


# --- the BI file ---------------------------------------------------------------------------

def bi_path(warehouse: Path) -> Path:
    """What BI tools connect to: `<warehouse>.bi.duckdb` beside the warehouse."""
    warehouse = Path(warehouse)
    return warehouse.with_name(f"{warehouse.stem}.bi{warehouse.suffix}")


@dataclass
class BiSummary:
    path: Path
    tables: list[str] = field(default_factory=list)
    pseudonymised: list[str] = field(default_factory=list)  # table.column
    in_clear: list[str] = field(default_factory=list)  # opted in by the deployment

    def report(self) -> str:
        masked = ", ".join(self.pseudonymised) or "none"
        clear = f"; in clear by $CRM_BI_CLEAR_COLUMNS: {', '.join(self.in_clear)}" \
            if self.in_clear else ""
        return (f"BI file {self.path}: {len(self.tables)} tables of schema marts; personal "
                f"columns pseudonymised (HMAC-SHA256): {masked}{clear}.")


def _refuse_unclassified(columns: dict[tuple[str, str], list[str]],
                         classified: dict[tuple[str, str, str], Column]) -> None:
    """PrivacyError naming every BI column whose name looks personal and that the YAML does not
    classify: BI would read it in clear."""
    unclassified = [f"{s}.{t}.{c}" for (s, t), cols in columns.items() for c in cols
                    if PERSONAL_NAME.search(c.lower()) and (s, t, c) not in classified]
    if unclassified:
        raise PrivacyError(
            "Not published: column(s) " + ", ".join(unclassified) + " look personal by their "
            "name and their model YAML does not classify them (meta: {personal: <kind>}, or "
            "{personal: none}); BI would read them in clear.")


def write_bi_file(candidate: Path, target: Path, key: bytes,
                  forgotten: set[str] | frozenset[str] = frozenset()) -> BiSummary:
    """Write `target` (a new file) with the BI schemas of `candidate`, personal columns
    pseudonymised, without the rows of the `forgotten` customers (by the erasure keys: a view
    BI reads as a table is filtered too, whatever tables it reads). Raises PrivacyError for a column whose name looks personal and that the
    YAML does not classify (nothing is written then)."""
    candidate, target = Path(candidate), Path(target)
    for file in (target, Path(f"{target}.wal")):
        file.unlink(missing_ok=True)
    summary = BiSummary(target)
    allowed = clear_columns()
    with duckdb.connect(str(candidate), read_only=True) as source:
        classified = {(c.schema, c.table, c.column): c for c in read_classification(source)}
        relations = source.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where table_catalog = current_database() and table_schema in ("
            + ", ".join(f"'{s}'" for s in BI_SCHEMAS) + ") order by table_schema, table_name, "
            "ordinal_position").fetchall()
    columns: dict[tuple[str, str], list[str]] = {}
    for schema, table, column in relations:
        columns.setdefault((schema, table), []).append(column)
    _refuse_unclassified(columns, classified)
    partial = target.with_name(f".{target.name}.partial")
    for file in (partial, Path(f"{partial}.wal")):
        file.unlink(missing_ok=True)
    with duckdb.connect(str(partial)) as con:
        con.create_function(
            "crm_pseudonym", lambda value, kind: pseudonym(key, value, kind),
            [VARCHAR, VARCHAR], VARCHAR,
            side_effects=False)
        con.execute(f"attach '{candidate}' as candidate (read_only)")
        for schema in BI_SCHEMAS:
            con.execute(f'create schema if not exists "{schema}"')
        con.execute("create temp table forgotten (value varchar)")
        if forgotten:
            con.executemany("insert into forgotten values (?)", [[c] for c in sorted(forgotten)])
        for (schema, table), names in columns.items():
            keys = [c.column for c in classified.values() if (c.schema, c.table) == (schema, table)
                    and c.erasure == "customer" and c.column in names]
            where = " and ".join(f'cast("{k}" as varchar) not in (select value from forgotten)'
                                 for k in keys) or "true"
            select = []
            for name in names:
                info = classified.get((schema, table, name))
                quoted = f'"{name}"'
                if info and info.personal and f"{table}.{name}".lower() not in allowed:
                    select.append(f"crm_pseudonym(cast({quoted} as varchar), "
                                  f"'{info.personal}') as {quoted}")
                    summary.pseudonymised.append(f"{table}.{name}")
                else:
                    if info and info.personal:
                        summary.in_clear.append(f"{table}.{name}")
                    select.append(quoted)
            con.execute(f'create table "{schema}"."{table}" as select {", ".join(select)} '
                        f'from candidate."{schema}"."{table}" where {where}')
            summary.tables.append(f"{schema}.{table}")
        con.execute("detach candidate")
        con.execute("checkpoint")
    os.replace(partial, target)
    return summary


# --- crm-tags forget -----------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    from crm_tags.build import DEFAULT_WAREHOUSE

    parser.add_argument("customer_id", nargs="?", help="the CRM account_id to forget")
    parser.add_argument("--reason", default="", help="why (kept in the erasure log for audit)")
    parser.add_argument(
        "--warehouse", type=Path,
        default=Path(os.environ.get("CRM_WAREHOUSE_PATH", DEFAULT_WAREHOUSE)),
        help="the published warehouse (default: $CRM_WAREHOUSE_PATH or data/warehouse.duckdb); "
             "the erasure log is erasure_requests.jsonl beside it, or $CRM_ERASURE_LOG")
    parser.add_argument("--list", action="store_true", help="show the erasure log")


def run(args: argparse.Namespace) -> int:
    log = erasure_log_path(args.warehouse)
    if args.list or not args.customer_id:
        requests = read_erasure_log(log)
        if not requests:
            print(f"No erasure request in {log}.")
        for r in requests:
            print(f"  {r['requested_at']}  {r['customer_id']}  by {r['requested_by']}  "
                  f"request {r['request_id']}  reason: {r['reason'] or '(none given)'}")
        return 0
    try:
        request = forget(args.warehouse, args.customer_id, args.reason, log=log)
    except ForgetError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"Erasure request {request.request_id} recorded in {log}: customer "
          f"{request.customer_id}, their contacts and emails leave every mart, the segments and "
          "the BI file at the next run (crm-tags build); the landing zone keeps the delivered "
          "rows, and every later run forgets them again.")
    return 0
