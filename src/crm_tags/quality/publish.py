"""Write-audit-publish: BI tools only ever see marts that passed the quality gate.

BI tools read the warehouse file (CRM_WAREHOUSE_PATH). The gated pipeline never builds into it:

1. write   - dbt builds a candidate file next to it (`.<name>.candidate.duckdb`), starting from
             a copy of the published warehouse so the incremental base models load only new
             deliveries (from scratch when nothing is published yet; full_refresh=True rebuilds
             everything but the histories kept over time, docs/history.md);
             the previous run's tag distributions are carried over for the swing check;
2. audit   - the quality gate validates the candidate (read-only);
3. publish - only when the gate passes: the current distribution is recorded in the candidate,
             the candidate is checkpointed and atomically renamed over the warehouse file
             (os.replace). Readers holding the old file keep reading the old marts; new
             connections see the new ones. Nothing is copied table by table, so BI never sees a
             mix of old and new tables.

Publishing also writes what BI tools connect to: `<name>.bi.duckdb` beside the warehouse, with
the schema `marts` only and its personal columns pseudonymised, after the customers of the erasure
log were deleted from the candidate (crm_tags.privacy, docs/privacy.md). Both files are renamed
into place together; without the masking key nothing is published.

When the build or the gate fails, the warehouse file is untouched (the last good marts stay
readable) and the candidate is kept as `.<name>.rejected.duckdb` for inspection.

Nothing here opens the published file read-write, so a BI tool holding it open (a read lock,
crm_tags.warehouse_lock) never makes a build or a publish fail: the copy and the rename only
take a read lock, which refuses, naming it, a process that is *writing* the file.
`crm-tags build` runs this; `crm-tags build --scratch` is the in-place, ungated build for
engineers (never the file BI reads).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from crm_tags.build import DbtError, build, current_target
from crm_tags.privacy import (
    PrivacyError,
    bi_path,
    erase_forgotten,
    erasure_log_path,
    forgotten_customers,
    load_key,
    write_bi_file,
)
from crm_tags.quality.distribution import HISTORY_TABLE, forget_published_run, record_run
from crm_tags.quality.gate import GateResult, run_gate
from crm_tags.warehouse_lock import WarehouseLocked, lock_holders, no_writer

# Models that count what the erasure deletes (marts.segment_members), rebuilt after it.
RECOUNTED = ("segment_catalog", "segment_runs")
RECOUNTED_FROM = frozenset({"marts.segment_members", "marts.segment_matches",
                            "marts.segment_membership_history"})


@dataclass
class PublishResult:
    published: bool
    warehouse: Path  # what BI reads
    # the rejected candidate, kept for inspection (None when published): a file, or on
    # PostgreSQL its schemas (crm_tags.pg_publish)
    candidate: Path | str | None
    gate: GateResult | None  # None when the build failed before the gate
    error: str | None = None  # why nothing was published, when it is not a gate failure
    build_seconds: float = 0.0
    gate_seconds: float = 0.0
    run_id: str | None = None
    privacy: str | None = None  # what publishing erased and pseudonymised
    # built in place and gated, nothing published (the spark target: docs/engines.md)
    in_place: bool = False

    @property
    def passed(self) -> bool:
        """Alias of `published`: the gate passed and BI now reads the new marts."""
        return self.published

    def report(self) -> str:
        lines = [self.gate.report()] if self.gate else []
        if self.error:
            lines.append(self.error)
        if self.in_place:
            lines.append(
                f"Gate passed on {self.warehouse} (run {self.run_id}; build "
                f"{self.build_seconds:.0f} s, gate {self.gate_seconds:.0f} s): its tag "
                "distribution is recorded for the next run's swing check. Nothing is published: "
                "Spark has no BI publish yet (docs/privacy.md)." if self.published else
                f"Gate FAILED on {self.warehouse}: dbt built it in place, so its schemas hold "
                "this build; nothing is published (Spark has no BI publish yet).")
            return "\n".join(lines)
        if self.published and self.privacy:
            lines.append(self.privacy)
        if self.published:
            lines.append(f"Published to {self.warehouse} (run {self.run_id}; build "
                         f"{self.build_seconds:.0f} s, gate {self.gate_seconds:.0f} s).")
        else:
            kept = f"; the rejected candidate is {self.candidate}" if self.candidate else ""
            lines.append(f"NOT published: {self.warehouse} still holds the last good marts{kept}.")
        return "\n".join(lines)


def candidate_path(warehouse: Path) -> Path:
    return warehouse.with_name(f".{warehouse.stem}.candidate{warehouse.suffix}")


def rejected_path(warehouse: Path) -> Path:
    return warehouse.with_name(f".{warehouse.stem}.rejected{warehouse.suffix}")


def _remove(path: Path) -> None:
    for file in (path, path.with_name(path.name + ".wal")):
        file.unlink(missing_ok=True)


def build_and_publish(
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
    """dbt build a candidate, gate it, publish it over `warehouse` only if the gate passes.

    Raises crm_tags.build.DbtError when the build itself fails (a delivery error names the
    table, file and column); the warehouse is untouched then too. Otherwise returns a
    PublishResult: `.published` (alias `.passed`), `.gate` (the GateResult), `.report()`.
    target_path: dbt target dir for the candidate build (default: a private one next to the
    warehouse, `.<name>.dbt_target`, so parallel jobs do not share target/). select: a dbt
    selection rebuilt in the candidate (the rest is the published copy's).
    When another process writes the warehouse (or another build its candidate), nothing is
    built: the result's `.error` names that process.
    On the postgres target ($CRM_TARGET) the build writes candidate schemas, gated in
    PostgreSQL and swapped in for the published ones with the `bi` schema (crm_tags.pg_publish). On the spark target the build is in
    place and gated by Spark SQL; nothing is published (crm_tags.quality.spark_gate).
    """
    if current_target() == "spark":
        from crm_tags.quality.spark_gate import build_and_gate_spark

        return build_and_gate_spark(
            raw_dir, warehouse, as_of, target_path=target_path, runtime_dir=runtime_dir,
            policy=policy, quiet=quiet, full_refresh=full_refresh, select=select)
    if current_target() == "postgres":
        from crm_tags.pg_publish import build_and_publish_postgres

        return build_and_publish_postgres(
            raw_dir, warehouse, as_of, target_path=target_path, runtime_dir=runtime_dir,
            policy=policy, quiet=quiet, full_refresh=full_refresh, select=select)
    warehouse = Path(warehouse).resolve()
    candidate = candidate_path(warehouse)
    target_path = Path(target_path or warehouse.with_name(f".{warehouse.stem}.dbt_target"))
    started = time.monotonic()
    try:
        load_key()  # no key, no publish: say so before an hour of building
    except PrivacyError as error:
        return PublishResult(False, warehouse, None, None, error=str(error))
    try:
        _claim(candidate)
        if warehouse.exists():
            # with full_refresh too: dbt --full-refresh then rebuilds every model from the
            # deliveries except what is kept over time (models with full_refresh=false: the tag
            # and segment histories, the LTV fits), which only the copy can carry
            copy_warehouse(warehouse, candidate)
    except WarehouseLocked as error:
        return PublishResult(False, warehouse, None, None, error=str(error))
    try:
        # a production run: dbt unit tests test the SQL and belong to CI (make test)
        build(raw_dir, candidate, as_of, select=select, target_path=target_path, quiet=quiet,
              full_refresh=full_refresh, unit_tests=False)
    except DbtError:
        _keep_rejected(candidate, warehouse)
        raise

    def recount(run_date: dt.date | None) -> None:
        # the erasure ran after dbt: the segments' counts are recomputed by their own models
        build(raw_dir, candidate, run_date or as_of, select=" ".join(RECOUNTED),
              target_path=target_path, quiet=True, unit_tests=False)

    result = gate_and_publish(candidate, warehouse, manifest=target_path / "manifest.json",
                              runtime_dir=runtime_dir, policy=policy, recount=recount)
    result.build_seconds = time.monotonic() - started - result.gate_seconds
    return result


def gate_and_publish(
    candidate: Path,
    warehouse: Path,
    *,
    manifest: Path | None = None,
    runtime_dir: Path | None = None,
    policy: Path | None = None,
    recount: Callable[[dt.date | None], None] | None = None,
) -> PublishResult:
    """Audit an already built `candidate` and, if it passes, publish it over `warehouse`.

    manifest, runtime_dir, policy: as for crm_tags.quality.gate.run_gate. recount: rebuilds
    the counting models (RECOUNTED) in the candidate for a run date, after the erasure (publish).
    """
    warehouse, candidate = Path(warehouse).resolve(), Path(candidate).resolve()
    carried = prepare_candidate(warehouse, candidate)
    started = time.monotonic()
    gate = run_gate(candidate, manifest=manifest, runtime_dir=runtime_dir, policy=policy)
    if carried:
        gate.notes.append(carried)
    gate_seconds = time.monotonic() - started
    if not gate.passed:
        return PublishResult(False, warehouse, _keep_rejected(candidate, warehouse), gate,
                             gate_seconds=gate_seconds)
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    run_id = f"{gate.run_date}_{now:%Y%m%dT%H%M%S%f}"
    try:
        with duckdb.connect(str(candidate)) as con:
            record_run(con, run_id, now)
        privacy = publish(candidate, warehouse,
                          recount=(lambda: recount(gate.run_date)) if recount else None)
    except PrivacyError as error:
        return PublishResult(False, warehouse, _keep_rejected(candidate, warehouse), gate,
                             error=str(error), gate_seconds=gate_seconds)
    except (WarehouseLocked, duckdb.Error, DbtError) as error:
        return PublishResult(False, warehouse, _keep_rejected(candidate, warehouse), gate,
                             error=f"Publishing failed: {error}", gate_seconds=gate_seconds)
    return PublishResult(True, warehouse, None, gate, gate_seconds=gate_seconds, run_id=run_id,
                         privacy=privacy)


def publish(candidate: Path, warehouse: Path, recount: Callable[[], None] | None = None) -> str:
    """Atomically replace `warehouse` by `candidate` (same directory, so one rename): readers
    see the old file or the new one, never a mix; open connections keep the old file. Returns
    what was erased and pseudonymised (crm_tags.privacy), one paragraph.

    First the customers of the erasure log are deleted from the candidate, and the BI file
    (`<name>.bi.duckdb`, schema marts, personal columns pseudonymised) is written from it; it
    is renamed into place with the warehouse. Raises PrivacyError (nothing renamed) without
    the masking key or for an unclassified column that looks personal.

    recount: rebuilds the segments' counting models (RECOUNTED) after an erasure that deleted
    members, so the published counts agree with the published members.

    Takes only a read lock on the old files, so BI connections holding them never stop a
    publish; raises WarehouseLocked, naming the process, while another process writes one (its
    work would vanish with the old file)."""
    candidate, warehouse = Path(candidate), Path(warehouse)
    key = load_key()
    customers = forgotten_customers(erasure_log_path(warehouse))
    with duckdb.connect(str(candidate)) as con:
        erased = erase_forgotten(con, customers)
    if recount and any(n for table, n in erased.items() if table in RECOUNTED_FROM):
        # counts dbt made before the erasure (members per segment, their share) would still
        # count the forgotten: their own models count the published members again
        recount()
    checkpoint(candidate)  # the file alone must hold every table: no WAL travels
    bi = bi_path(warehouse)
    bi_candidate = bi.with_name(f".{bi.stem}.candidate{bi.suffix}")
    summary = write_bi_file(candidate, bi_candidate, key, customers)
    with _no_writer_if_exists(warehouse), _no_writer_if_exists(bi):
        # A WAL beside the old file that nobody writes was left by a crashed writer. Replayed
        # onto the new file it would corrupt it; its changes belong to the old file, which is
        # being replaced (and copy_warehouse carried them into the candidate it copied).
        Path(f"{warehouse}.wal").unlink(missing_ok=True)
        Path(f"{bi}.wal").unlink(missing_ok=True)
        os.replace(bi_candidate, bi)
        os.replace(candidate, warehouse)
    summary.path = bi
    rows = sum(erased.values())
    forgotten = (f"Erasure log: {len(customers)} customer(s) forgotten; {rows} row(s) deleted "
                 f"this run ({', '.join(f'{t} {n}' for t, n in erased.items() if n) or 'none left'})."
                 if customers else "Erasure log: no customer to forget.")
    return f"{summary.report()}\n{forgotten}"


@contextlib.contextmanager
def _no_writer_if_exists(path: Path) -> Iterator[None]:
    if not path.exists():
        yield
        return
    with no_writer(path, f"publish over {path}"):
        yield


def checkpoint(path: Path) -> None:
    """Fold a write-ahead log into its file, so the file alone holds every table. For files
    only this process opens (the candidate): it opens `path` read-write."""
    if Path(f"{path}.wal").exists():
        with duckdb.connect(str(path)) as con:
            con.execute("checkpoint")


def copy_warehouse(source: Path, target: Path) -> None:
    """Copy a warehouse file (with a crashed writer's WAL, folded into the copy); `target`
    appears whole or not at all. `source` is only read, under a read lock: BI connections
    holding it stay, and a process writing it is named (WarehouseLocked)."""
    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    _remove(partial)
    with no_writer(source, f"copy {source}") as descriptor, open(partial, "wb") as out:
        # through the locked descriptor: opening the file again would drop the lock (POSIX)
        offset = 0
        while chunk := os.pread(descriptor, 1 << 24, offset):
            out.write(chunk)
            offset += len(chunk)
        wal = Path(f"{source}.wal")
        if wal.exists():  # no writer holds the file, so the WAL is whole
            shutil.copyfile(wal, f"{partial}.wal")
    checkpoint(partial)
    Path(f"{target}.wal").unlink(missing_ok=True)  # a stale log would be replayed onto the copy
    os.replace(partial, target)


def _claim(candidate: Path) -> None:
    """Clear the candidate for a new build, unless a process (another build, someone looking
    into it) still has it open."""
    holders = lock_holders(candidate)
    if holders:
        raise WarehouseLocked(
            f"Cannot build now: the candidate {candidate} is open in "
            f"{', '.join(map(str, holders))}. Let that build finish (or close that connection), "
            "then run again.")
    _remove(candidate)


def _keep_rejected(candidate: Path, warehouse: Path) -> Path | None:
    if not candidate.exists():
        return None
    rejected = rejected_path(warehouse)
    _remove(rejected)
    os.replace(candidate, rejected)
    return rejected


def prepare_candidate(warehouse: Path, candidate: Path) -> str | None:
    """Carry the published distribution history into the candidate (a note when it cannot).

    A candidate is not published yet: any audit.published_run it holds (a copy of a published
    file) is dropped, so the swing check compares against the last published run.
    """
    try:
        with duckdb.connect(str(candidate)) as con:
            forget_published_run(con)
            if not warehouse.exists():
                return None
            con.execute(f"attach '{warehouse}' as published (read_only)")
            try:
                if table_exists_in(con, "published", HISTORY_TABLE):
                    con.execute("create schema if not exists audit")
                    con.execute(f"create or replace table {HISTORY_TABLE} as "
                                f"select * from published.{HISTORY_TABLE}")
            finally:
                con.execute("detach published")
    except duckdb.Error as error:
        return f"previous tag distributions could not be read from {warehouse}: {error}"
    return None



def table_exists_in(con: duckdb.DuckDBPyConnection, catalog: str, qualified_name: str) -> bool:
    schema, name = qualified_name.split(".")
    return bool(con.execute(
        "select count(*) from information_schema.tables"
        " where table_catalog = ? and table_schema = ? and table_name = ?",
        [catalog, schema, name],
    ).fetchone()[0])
