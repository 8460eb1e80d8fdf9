"""`crm-tags build` on PostgreSQL: write-audit-publish of every schema the build writes
(docs/engines.md, "The quality gate and publishing on PostgreSQL"; docs/privacy.md).

1. write   - dbt builds candidate schemas beside the published ones: every schema of the
             build gets the suffix `__candidate` (marts__candidate, core__candidate, ...,
             python_models__candidate for the host-run Python models; $CRM_SCHEMA_SUFFIX,
             macros/generate_schema_name.sql). First the published schemas are carried into
             them, as the DuckDB candidate starts as a copy of the published file: every table
             dbt does not rebuild from scratch (the incremental models, with the histories kept
             over time, the host-run Python models' results, audit.tag_distribution_history),
             with the schemas' and tables' privileges and default privileges (carry). dbt
             rebuilds the table models and views there; `crm-tags load` fills the raw_*
             schemas as before (they mirror the landing zone, they are not published);
2. audit   - the quality gate runs in PostgreSQL on the candidate schemas (the suites name the
             published ones; crm_tags.quality.connection.SchemaNames says where they are);
3. publish - only when the gate passes: the run's tag distribution is recorded in the
             candidate, the customers of the erasure log are deleted from it (crm_tags.privacy;
             when that deleted segment members, the segments' counting models are rebuilt,
             RECOUNTED), and `bi__candidate` is written from marts__candidate (every table and
             view as a table, personal columns pseudonymised with the same keyed HMAC as
             DuckDB's BI file, computed on this host: the key never reaches the server). Then
             ONE transaction renames each published schema to `<name>__previous` and its
             candidate to `<name>`, and grants `bi` to the BI role ($CRM_PG_BI_ROLE, default
             crm_bi): PostgreSQL's DDL is transactional, so readers see the old schemas or the
             new ones, never a mix. The previous schemas are dropped after the commit.

A view binds to the relations it reads by OID, not by name: the candidate's views read the
candidate's tables, and after the renames they read the same (now published) tables under
their published names; a query running on the old schemas finishes on them. A failed build or
gate leaves every published schema as it was and keeps the candidate for inspection as
`<name>__rejected` (dropped by the next publish, or replaced by the next rejection).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

from crm_tags.build import SCHEMA_SUFFIX_ENV, DbtError, build, run_dbt
from crm_tags.privacy import (
    BI_SCHEMAS,
    FORGOTTEN_CONTACTS_SQL,
    BiSummary,
    Column,
    PrivacyError,
    _refuse_unclassified,
    clear_columns,
    erasure_log_path,
    forgotten_customers,
    load_key,
    pseudonym,
)
from crm_tags.python_on_host import SCHEMA as HOST_SCHEMA
from crm_tags.quality.connection import PgConnection, SchemaNames, pg_label
from crm_tags.quality.distribution import (
    HISTORY_TABLE,
    PUBLISHED_RUN_TABLE,
    forget_published_run,
    record_run,
)
from crm_tags.quality.publish import RECOUNTED, RECOUNTED_FROM, PublishResult

BI_SCHEMA = "bi"
BI_ROLE_ENV = "CRM_PG_BI_ROLE"
CANDIDATE = "__candidate"  # the schemas a build writes and the gate audits
REJECTED = "__rejected"  # a candidate the build or the gate rejected, kept for inspection
PREVIOUS = "__previous"  # the published schemas being replaced, dropped after the swap
# one build at a time per database: the candidate schemas are shared (an advisory lock)
BUILD_LOCK = "select pg_try_advisory_lock(hashtext('crm_tags.pg_publish'))"


def bi_role() -> str:
    role = os.environ.get(BI_ROLE_ENV, "").strip() or "crm_bi"
    if not role.replace("_", "").isalnum():
        raise PrivacyError(f"${BI_ROLE_ENV}={role!r} is not a plain role name")
    return role


def build_and_publish_postgres(
    raw_dir: Path,
    warehouse: Path,
    as_of: dt.date | str | None = None,
    *,
    target_path: Path | None = None,
    runtime_dir: Path | None = None,
    policy: Path | None = None,
    quiet: bool = True,
    full_refresh: bool = False,
    select: str | None = None,
) -> PublishResult:
    """Build candidate schemas on the postgres target, gate them there, and swap them in for
    the published schemas (with the `bi` schema) if the gate passes. `warehouse` only places
    the erasure log (erasure_requests.jsonl beside it, or $CRM_ERASURE_LOG). Raises
    crm_tags.build.DbtError when dbt fails (every published schema untouched, the candidate
    kept as `<schema>__rejected`)."""
    import psycopg2

    from crm_tags.load import pg_connect_kwargs
    from crm_tags.python_on_host import _environment

    settings = pg_connect_kwargs()
    label = pg_label(settings)
    started = time.monotonic()
    try:
        key = load_key()  # no key, no publish: say so before building
    except PrivacyError as error:
        return PublishResult(False, label, None, None, error=str(error))
    target_path = Path(target_path or Path(warehouse).resolve().with_name(".postgres.dbt_target"))
    connection = psycopg2.connect(**settings)
    connection.autocommit = True  # the lock is the session's; each step below its own transaction
    try:
        with connection.cursor() as cur:
            cur.execute(BUILD_LOCK)
            if not cur.fetchone()[0]:
                return PublishResult(False, label, None, None, error=(
                    f"Cannot build now: another crm-tags build holds {label} (its candidate "
                    "schemas are in use). Let it finish, then run again."))
        connection.autocommit = False
        with _environment(SCHEMA_SUFFIX_ENV, CANDIDATE):
            return _write_audit_publish(
                connection, label, key, started, raw_dir, warehouse, as_of, target_path,
                runtime_dir, policy, quiet, full_refresh, select)
    finally:
        connection.close()  # releases the lock


def _write_audit_publish(connection, label, key, started, raw_dir, warehouse, as_of, target_path,
                         runtime_dir, policy, quiet, full_refresh, select) -> PublishResult:
    """build_and_publish_postgres's steps, on its connection (holding the build lock), with the
    candidate suffix set for every dbt run."""
    import psycopg2

    from crm_tags.quality.gate import run_gate

    manifest = target_path / "manifest.json"
    project = _manifest(manifest, raw_dir, warehouse, as_of, target_path)
    # a selection rebuilds only itself: everything else is carried
    rebuilt = set() if select else rebuilt_tables(project)
    with connection, connection.cursor() as cur:
        drop_schemas(cur, CANDIDATE)  # a crashed build's
        carry(cur, build_schemas(project), rebuilt)
    try:
        build(raw_dir, warehouse, as_of, select=select, target_path=target_path, quiet=quiet,
              full_refresh=full_refresh, unit_tests=False)
        if select:
            # a selection rebuilds only itself: the views of the rest are the published ones'
            run_dbt(["run", "--select", "config.materialized:view"], raw_dir, warehouse, as_of,
                    target_path, quiet)
    except DbtError:
        with connection, connection.cursor() as cur:
            reject(cur)
        raise
    with connection, connection.cursor() as cur:
        names = candidate_names(cur)
        forget_published_run(PgConnection(connection, names))  # not published (yet)
    gate_started = time.monotonic()
    gate = run_gate(warehouse, manifest=manifest, runtime_dir=runtime_dir, policy=policy,
                    engine="postgres", names=names)
    gate_seconds = time.monotonic() - gate_started
    build_seconds = gate_started - started

    def rejected(error: str | None = None) -> PublishResult:
        with connection, connection.cursor() as cur:
            kept = reject(cur)
        return PublishResult(False, label, kept, gate, error=error, build_seconds=build_seconds,
                             gate_seconds=gate_seconds)

    if not gate.passed:
        return rejected()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    run_id = f"{gate.run_date}_{now:%Y%m%dT%H%M%S%f}"
    customers = forgotten_customers(erasure_log_path(warehouse))
    try:
        with connection:
            record_run(PgConnection(connection, names), run_id, now)
            with connection.cursor() as cur:
                erased = erase_forgotten_pg(cur, customers, names)
        if any(n for table, n in erased.items() if table in RECOUNTED_FROM):
            # counts dbt made before the erasure: their own models count the members again
            build(raw_dir, warehouse, gate.run_date or as_of, select=" ".join(RECOUNTED),
                  target_path=target_path, quiet=True, unit_tests=False)
        with connection, connection.cursor() as cur:
            # the recount rebuilt tables under the same names: the gate's names still hold
            summary = write_bi_schema(cur, key, customers, names)
        with connection, connection.cursor() as cur:  # one transaction: old or new, never a mix
            swapped = swap(cur)
    except DbtError as error:
        return rejected(f"Publishing failed: {error}")
    except (PrivacyError, psycopg2.Error) as error:
        return rejected(str(error) if isinstance(error, PrivacyError) else f"Publishing failed: {error}")
    try:  # published: what is left of the old schemas goes (after queries still reading them)
        with connection, connection.cursor() as cur:
            drop_schemas(cur, PREVIOUS, REJECTED)
    except psycopg2.Error as error:
        gate.notes.append(f"The replaced schemas (*{PREVIOUS}) could not be dropped: "
                          f"{str(error).strip()}; the next publish drops them.")
    rows = sum(erased.values())
    forgotten = (f"Erasure log: {len(customers)} customer(s) forgotten; {rows} row(s) deleted "
                 f"this run ({', '.join(f'{t} {n}' for t, n in erased.items() if n) or 'none left'})."
                 if customers else "Erasure log: no customer to forget.")
    return PublishResult(True, label, None, gate, build_seconds=build_seconds,
                         gate_seconds=gate_seconds, run_id=run_id,
                         privacy=f"{summary.report()}\n{forgotten}\nSwapped in: "
                                 f"{', '.join(swapped)}.")


# --- the candidate schemas -------------------------------------------------------------------

def _manifest(path: Path, raw_dir: Path, warehouse: Path, as_of, target_path: Path) -> dict:
    """The project's manifest: the last build's in the target dir (any build of this project
    names the same schemas and models), or a `dbt parse` when there is none."""
    if not path.exists():
        run_dbt(["parse"], raw_dir, warehouse, as_of, target_path, quiet=True)
    return json.loads(path.read_text())


def _published(schema: str) -> str:
    return schema.removesuffix(CANDIDATE)


def build_schemas(manifest: dict) -> list[str]:
    """The published names of the schemas a build writes: its models', seeds' and snapshots'
    custom schemas (never the target's own, e.g. public: not the build's to swap), and the
    host-run Python models' (python_models)."""
    schemas = {_published(node["schema"]) for node in manifest["nodes"].values()
               if node["resource_type"] in ("model", "seed", "snapshot")
               and node["config"].get("schema")}
    return sorted(schemas | {HOST_SCHEMA})


def rebuilt_tables(manifest: dict) -> set[tuple[str, str]]:
    """(published schema, table) of the models and seeds a full build writes from scratch (a
    table model, a seed): nothing of them to carry."""
    return {(_published(node["schema"]), node["alias"]) for node in manifest["nodes"].values()
            if node["resource_type"] == "seed" or (node["resource_type"] == "model"
                                                   and node["config"].get("materialized") == "table")}


def _exists(cur, schema: str) -> bool:
    cur.execute("select 1 from pg_namespace where nspname = %s", [schema])
    return cur.fetchone() is not None


def _schemas_ending(cur, suffix: str) -> list[str]:
    cur.execute("select nspname from pg_namespace where right(nspname, %s) = %s order by 1",
                [len(suffix), suffix])
    return [row[0] for row in cur.fetchall()]


def drop_schemas(cur, *suffixes: str) -> None:
    for suffix in suffixes:
        for schema in _schemas_ending(cur, suffix):
            cur.execute(f'drop schema "{schema}" cascade')


def _grant_all(cur, acl_query: str, params: list, grant: str) -> None:
    """Repeat each entry of an ACL (rows of aclexplode: grantee oid, privilege, grantable) as
    `grant` (a template with {privilege} and {grantee}); the owner's own entries are implicit."""
    cur.execute(f"select case when acl.grantee = 0 then 'public' else quote_ident(r.rolname) end, "
                f"acl.privilege_type, acl.is_grantable from ({acl_query}) as acl "
                "left join pg_roles as r on r.oid = acl.grantee "
                "where acl.grantee <> acl.grantor", params)
    for grantee, privilege, grantable in cur.fetchall():
        cur.execute(grant.format(privilege=privilege, grantee=grantee)
                    + (" with grant option" if grantable else ""))


_OBJECT_KINDS = {"r": "tables", "S": "sequences", "f": "functions", "T": "types"}


def _copy_privileges(cur, source: str, target: str) -> None:
    """The schema privileges and default privileges of `source` on `target`: whoever could read
    the published schema (and the tables created in it) can read its successor."""
    _grant_all(cur, "select (aclexplode(nspacl)).* from pg_namespace where nspname = %s",
               [source], f'grant {{privilege}} on schema "{target}" to {{grantee}}')
    cur.execute("select d.oid, quote_ident(pg_get_userbyid(d.defaclrole)), d.defaclobjtype "
                "from pg_default_acl as d join pg_namespace as n on n.oid = d.defaclnamespace "
                "where n.nspname = %s", [source])
    for oid, role, kind in cur.fetchall():
        if kind in _OBJECT_KINDS:
            _grant_all(cur, "select (aclexplode(defaclacl)).* from pg_default_acl where oid = %s",
                       [oid], f'alter default privileges for role {role} in schema "{target}" '
                              f"grant {{privilege}} on {_OBJECT_KINDS[kind]} to {{grantee}}")


def carry(cur, schemas: list[str], rebuilt: set[tuple[str, str]]) -> None:
    """Create each build schema's candidate, carrying what the published schema holds that the
    build does not write from scratch: every table but `rebuilt` (the incremental models, the
    histories kept over time, the host-run models' results, the gate's distribution history),
    with its privileges; and the schema's privileges. Views are rebuilt by dbt."""
    for schema in schemas:
        candidate = schema + CANDIDATE
        cur.execute(f'create schema "{candidate}"')
        if not _exists(cur, schema):
            continue  # first build: nothing published
        _copy_privileges(cur, schema, candidate)
        cur.execute("select c.relname from pg_class as c join pg_namespace as n "
                    "on n.oid = c.relnamespace where n.nspname = %s and c.relkind in ('r', 'p') "
                    "order by 1", [schema])
        for (table,) in cur.fetchall():
            if (schema, table) in rebuilt:
                continue
            source, target = f'"{schema}"."{table}"', f'"{candidate}"."{table}"'
            cur.execute(f"create table {target} (like {source} including all)")
            cur.execute(f"insert into {target} select * from {source}")
            cur.execute(f"analyze {target}")
            _grant_all(cur, "select (aclexplode(c.relacl)).* from pg_class as c join pg_namespace "
                            "as n on n.oid = c.relnamespace where n.nspname = %s and c.relname = %s",
                       [schema, table], f"grant {{privilege}} on {target} to {{grantee}}")


def candidate_names(cur) -> SchemaNames:
    """Where the gate, the erasure and the BI writer find the schemas they name: the candidate
    schemas and their relations (crm_tags.quality.connection.SchemaNames)."""
    candidates = _schemas_ending(cur, CANDIDATE)
    cur.execute("select n.nspname, c.relname from pg_class as c join pg_namespace as n "
                "on n.oid = c.relnamespace where n.nspname = any(%s)", [candidates])
    relations = [(_published(schema), name) for schema, name in cur.fetchall()]
    return SchemaNames.of({_published(s): s for s in candidates}, relations,
                          extra=[HISTORY_TABLE, PUBLISHED_RUN_TABLE])


def reject(cur) -> str | None:
    """Keep the candidate schemas for inspection as `<schema>__rejected` (replacing an earlier
    rejection's); says which."""
    drop_schemas(cur, REJECTED)
    kept = []
    for schema in _schemas_ending(cur, CANDIDATE):
        rejected = _published(schema) + REJECTED
        cur.execute(f'alter schema "{schema}" rename to "{rejected}"')
        kept.append(rejected)
    return f"the schemas {', '.join(kept)}" if kept else None


def swap(cur) -> list[str]:
    """In the caller's transaction: each published schema becomes `<name>__previous` and its
    candidate `<name>`; the BI role reads `bi`. Renames touch no table (no lock on what readers
    read); the caller drops the previous schemas after committing."""
    drop_schemas(cur, PREVIOUS)
    swapped = []
    for candidate in _schemas_ending(cur, CANDIDATE):
        schema = _published(candidate)
        if _exists(cur, schema):
            cur.execute(f'alter schema "{schema}" rename to "{schema}{PREVIOUS}"')
        cur.execute(f'alter schema "{candidate}" rename to "{schema}"')
        swapped.append(schema)
    role = bi_role()
    cur.execute("select 1 from pg_roles where rolname = %s", [role])
    if cur.fetchone() is None:
        # a group role: deployments grant it to their BI tools' login roles
        cur.execute(f"create role {role} nologin")
    cur.execute(f"grant usage on schema {BI_SCHEMA} to {role}")
    cur.execute(f"grant select on all tables in schema {BI_SCHEMA} to {role}")
    return swapped


def read_classification_pg(cur, names: SchemaNames | None = None) -> list[Column]:
    """audit.privacy_columns (of the candidate, with `names`): the published schema names."""
    names = names or SchemaNames()
    cur.execute("select count(*) from information_schema.tables where table_schema = %s "
                "and table_name = 'privacy_columns'", [names.schema("audit")])
    if not cur.fetchone()[0]:
        return []
    cur.execute(names.sql("select schema_name, table_name, column_name, personal_kind, "
                          "erasure_kind from audit.privacy_columns"))
    return [Column(s, t, c, p if p and p != "none" else None, e) for s, t, c, p, e in cur.fetchall()]


def _base_tables(cur) -> set[tuple[str, str]]:
    cur.execute("select table_schema, table_name from information_schema.tables "
                "where table_type = 'BASE TABLE'")
    return set(cur.fetchall())


def erase_forgotten_pg(cur, customers: set[str], names: SchemaNames | None = None) -> dict[str, int]:
    """crm_tags.privacy.erase_forgotten on PostgreSQL: delete the forgotten customers, their
    contacts and their contacts' emails (every delivered version) from every table whose model
    declares an erasure key (in the candidate schemas, with `names`); rows deleted per table,
    by its published name."""
    if not customers:
        return {}
    names = names or SchemaNames()
    cur.execute("drop table if exists pg_temp.forgotten")
    cur.execute("create temporary table forgotten (kind text, value text) on commit drop")
    for customer in sorted(customers):
        cur.execute("insert into forgotten values ('customer', %s)", [customer])
    tables = _base_tables(cur)
    if (names.schema("staging"), "base_crm__contacts") in tables:
        cur.execute(names.sql(FORGOTTEN_CONTACTS_SQL))
    deleted: dict[str, int] = {}
    for column in read_classification_pg(cur, names):
        schema = names.schema(column.schema)
        if not column.erasure or (schema, column.table) not in tables:
            continue
        value = f'"{column.column}"'
        value = f"lower(trim({value}))" if column.erasure == "email" else f"cast({value} as text)"
        cur.execute(f'delete from "{schema}"."{column.table}" where {value} in '
                    "(select value from forgotten where kind = %s)", [column.erasure])
        name = f"{column.schema}.{column.table}"
        deleted[name] = deleted.get(name, 0) + cur.rowcount
    return deleted


def write_bi_schema(cur, key: bytes, forgotten: set[str],
                    names: SchemaNames | None = None) -> BiSummary:
    """The schema `bi`: every table and view of `marts` (the candidate's, with `names`) as a
    table, personal columns replaced by their pseudonyms (crm_tags.privacy.pseudonym, computed
    here: the key never reaches the server), rows of forgotten customers left out by the
    erasure keys; written as `bi__candidate`, which `swap` renames to `bi` and grants to the
    BI role."""
    names = names or SchemaNames()
    summary = BiSummary(Path(BI_SCHEMA))
    allowed = clear_columns()
    classified = {(c.schema, c.table, c.column): c for c in read_classification_pg(cur, names)}
    published = {names.schema(schema): schema for schema in BI_SCHEMAS}
    cur.execute("select table_schema, table_name, column_name from information_schema.columns "
                "where table_schema = any(%s) order by table_schema, table_name, ordinal_position",
                [list(published)])
    columns: dict[tuple[str, str], list[str]] = {}
    for schema, table, column in cur.fetchall():
        columns.setdefault((published[schema], table), []).append(column)
    _refuse_unclassified(columns, classified)
    bi = BI_SCHEMA + CANDIDATE
    cur.execute(f"drop schema if exists {bi} cascade")
    cur.execute(f"create schema {bi}")
    cur.execute("drop table if exists pg_temp.bi_forgotten")
    cur.execute("create temporary table bi_forgotten (value text) on commit drop")
    for customer in sorted(forgotten):
        cur.execute("insert into bi_forgotten values (%s)", [customer])
    cur.execute("drop table if exists pg_temp.bi_pseudonyms")
    cur.execute("create temporary table bi_pseudonyms (kind text, value text, pseudonym text, "
                "primary key (kind, value)) on commit drop")
    for (schema, table), table_columns in columns.items():
        select = []
        for name in table_columns:
            info = classified.get((schema, table, name))
            quoted = f'"{name}"'
            if info and info.personal and f"{table}.{name}".lower() not in allowed:
                _add_pseudonyms(cur, key, names.schema(schema), table, name, info.personal)
                select.append(f"(select pseudonym from bi_pseudonyms where kind = "
                              f"'{info.personal}' and value = cast(source.{quoted} as text)) "
                              f"as {quoted}")
                summary.pseudonymised.append(f"{table}.{name}")
            else:
                if info and info.personal:
                    summary.in_clear.append(f"{table}.{name}")
                select.append(f"source.{quoted}")
        keys = [c.column for c in classified.values() if (c.schema, c.table) == (schema, table)
                and c.erasure == "customer" and c.column in table_columns]
        where = " and ".join(f'cast(source."{k}" as text) not in (select value from bi_forgotten)'
                             for k in keys) or "true"
        cur.execute(f'create table {bi}."{table}" as select {", ".join(select)} '
                    f'from "{names.schema(schema)}"."{table}" as source where {where}')
        summary.tables.append(f"{BI_SCHEMA}.{table}")
    return summary


def _add_pseudonyms(cur, key: bytes, schema: str, table: str, column: str, kind: str) -> None:
    from psycopg2.extras import execute_values

    cur.execute(f'select distinct cast("{column}" as text) from "{schema}"."{table}" '
                f'where "{column}" is not null')
    values = [(kind, value, pseudonym(key, value, kind)) for (value,) in cur.fetchall()]
    execute_values(cur, "insert into bi_pseudonyms values %s on conflict do nothing", values)
