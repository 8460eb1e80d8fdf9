"""Activation export of a segment from the published warehouse (`crm-tags segments export`).

Without --include-personal-data: one row per member with its contact channels as facts that
identify nobody (how many contacts, whether one has an email, a phone, the customer's service
preference). With it: one row per contact of each member, with the account name, the contact's
name, email and phone (the personal data a campaign tool needs), and the command says so.
The holdout members (the control group) are left out unless --include-holdout: a campaign that
reached them would spoil the lift it is meant to measure.

Every export is logged, as one JSON line in the export log (default segment_exports.jsonl beside
the warehouse, or $CRM_SEGMENT_EXPORT_LOG): who, when, which segment as of which run, how many
rows, whether personal data was written and which columns, the file's path and format; never a
value of the file. The file is written under a temporary name, the log line appended, and only
then the file renamed into place: an export that could not be logged does not exist.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

EXPORT_LOG_ENV = "CRM_SEGMENT_EXPORT_LOG"
FORMATS = ("csv", "parquet")
PERSONAL_COLUMNS = ("account_name", "contact_name", "email", "phone")


class ExportError(ValueError):
    """The export cannot be made (unknown segment, no warehouse, log not writable)."""


@dataclass
class ExportRecord:
    """One line of the export log (what a steward audits): no personal value, ever."""

    exported_at: str
    user: str
    host: str
    segment_code: str
    as_of_date: str | None
    format: str
    path: str
    rows: int
    members: int
    holdout_included: bool
    personal_data: bool
    personal_columns: list[str]
    warehouse: str


def export_log_path(warehouse: Path) -> Path:
    configured = os.environ.get(EXPORT_LOG_ENV, "").strip()
    return Path(configured) if configured else Path(warehouse).with_name("segment_exports.jsonl")


_MEMBERS = """
    select segment_code, customer_id, is_holdout, as_of_date
    from marts.segment_members
    where segment_code = $segment and ($holdout or not is_holdout)
"""

_CHANNELS_SQL = f"""
with members as ({_MEMBERS}),
contacts as (
    select
        customer_id,
        count(*) as contact_count,
        count(email) > 0 as has_email,
        count(phone) > 0 as has_phone,
    from core.dim_contacts
    where customer_id in (select customer_id from members)
    group by customer_id
)
select
    members.segment_code,
    members.customer_id,
    members.is_holdout,
    coalesce(contacts.contact_count, 0) as contact_count,
    coalesce(contacts.has_email, false) as has_email,
    coalesce(contacts.has_phone, false) as has_phone,
    profile.service_preference as preferred_channel,
    members.as_of_date,
from members
left join contacts on members.customer_id = contacts.customer_id
left join marts.customer_profile as profile on members.customer_id = profile.customer_id
order by members.customer_id
"""

_PERSONAL_SQL = f"""
with members as ({_MEMBERS})
select
    members.segment_code,
    members.customer_id,
    members.is_holdout,
    profile.account_name,
    contacts.contact_id,
    contacts.full_name as contact_name,
    contacts.email,
    contacts.phone,
    contacts.is_primary,
    profile.service_preference as preferred_channel,
    members.as_of_date,
from members
left join marts.customer_profile as profile on members.customer_id = profile.customer_id
left join core.dim_contacts as contacts on members.customer_id = contacts.customer_id
order by members.customer_id, contacts.is_primary desc nulls last, contacts.contact_id
"""


def export_segment(warehouse: Path, segment_code: str, out: Path, fmt: str, *,
                   personal_data: bool = False, include_holdout: bool = False,
                   log: Path | None = None) -> ExportRecord:
    warehouse, out = Path(warehouse), Path(out)
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if not warehouse.exists():
        raise ExportError(f"no warehouse at {warehouse}: build one first (crm-tags build)")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        try:
            known = dict(con.sql("select segment_code, as_of_date from marts.segment_catalog")
                         .fetchall())
        except duckdb.CatalogException:
            raise ExportError(f"{warehouse} has no segments (marts.segment_catalog): build "
                              "it with this version first") from None
        if segment_code not in known:
            raise ExportError(f"unknown segment {segment_code!r} in {warehouse}; expected one "
                              f"of: {', '.join(sorted(known)) or '(none)'}")
        sql = _PERSONAL_SQL if personal_data else _CHANNELS_SQL
        table: pa.Table = con.execute(
            sql, {"segment": segment_code, "holdout": include_holdout}).fetch_arrow_table()
    members = len(set(table.column("customer_id").to_pylist()))
    record = ExportRecord(
        exported_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        user=getpass.getuser(),
        host=socket.gethostname(),
        segment_code=segment_code,
        as_of_date=str(known[segment_code]) if known[segment_code] else None,
        format=fmt,
        path=str(out.resolve()),
        rows=table.num_rows,
        members=members,
        holdout_included=include_holdout,
        personal_data=personal_data,
        personal_columns=[c for c in PERSONAL_COLUMNS if c in table.column_names],
        warehouse=str(warehouse.resolve()),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.partial")
    try:
        if fmt == "csv":
            pa_csv.write_csv(table, partial)
        else:
            pq.write_table(table, partial)
        append_log(log or export_log_path(warehouse), record)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    return record


def append_log(log: Path, record: ExportRecord) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(asdict(record), ensure_ascii=False) + "\n"
    try:
        with log.open("a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        raise ExportError(f"the export log {log} cannot be written ({error}): nothing was "
                          "exported") from None


def read_log(log: Path) -> list[dict]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]
