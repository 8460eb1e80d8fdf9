"""BI tools read the published warehouse while builds run: they are never locked out, never make
a build fail, and a file another process holds gives a sentence naming that process.

The readers and writers here are other processes (DuckDB's file locks are per process): BI
readers open `marts.customer_profile` read-only, over and over or once and held open.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from conftest import GENERATED_AS_OF, generated_shop, query

from crm_tags.cli import main
from crm_tags.privacy import bi_path
from crm_tags.quality.publish import candidate_path

AS_OF = GENERATED_AS_OF

# A BI reader: `poll` opens a read-only connection per query, `hold` keeps one open. It prints
# "ready" after its first query, stops after the query that follows the stop file's creation,
# then prints what it saw as JSON.
READER = r"""
import json, os, sys, time
import duckdb

path, mode, stop = sys.argv[1:4]
sql = "select count(*), max(as_of_date)::varchar from marts.customer_profile"
held = duckdb.connect(path, read_only=True) if mode == "hold" else None
polls, seen, errors = 0, set(), []
while True:
    stopping = os.path.exists(stop)
    try:
        if held is not None:
            row = held.execute(sql).fetchone()
        else:
            with duckdb.connect(path, read_only=True) as con:
                row = con.execute(sql).fetchone()
        seen.add(row[1])
        polls += 1
        if polls == 1:
            print("ready", flush=True)
    except Exception as error:
        errors.append(f"{type(error).__name__}: {error}")
        if polls == 0:
            print("ready", flush=True)
    if stopping:
        break
    time.sleep(0.2)
print(json.dumps({"polls": polls, "as_of_seen": sorted(seen), "errors": errors[:3],
                  "failures": len(errors)}))
"""

# A process holding a DuckDB file until its stdin closes (read-write unless argv[2] == "ro").
HOLDER = r"""
import sys
import duckdb

con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
print("ready", flush=True)
sys.stdin.read()
"""


def _start(script: str, *args: object) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", script, *map(str, args)], text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdout.readline().strip() == "ready"
    return process


def _stop_holder(process: subprocess.Popen) -> None:
    process.stdin.close()
    process.wait()


@pytest.fixture(autouse=True)
def private_gate_runtime(tmp_path, monkeypatch):
    """Gate results and Data Docs of these builds stay out of expectations/uncommitted."""
    monkeypatch.setattr("crm_tags.quality.gate.DEFAULT_RUNTIME_DIR", tmp_path / "gx")


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A clean landing zone and the warehouse published from it: a copy of conftest's
    generated_shop (shared with test_quality_gate.py and test_privacy.py)."""
    root, _ = generated_shop(tmp_path_factory)
    return root, root / "warehouse.duckdb"


def _as_of(warehouse: Path) -> str:
    return query(warehouse, "select max(as_of_date)::varchar from marts.customer_profile")[0][0]


def _build_the_next_day_while(readers: list[str], root: Path, warehouse: Path, stop: Path):
    """`crm-tags build` for the day after the published one while BI readers (`poll`, `hold`)
    run; return the build's exit code, the dates before and after, and what each reader saw."""
    before = _as_of(warehouse)
    after = str(dt.date.fromisoformat(before) + dt.timedelta(days=1))
    # "hold-bi" / "poll-bi": the same reader on the BI file published beside the warehouse
    processes = [subprocess.Popen([sys.executable, "-c", READER,
                                   str(bi_path(warehouse) if mode.endswith("-bi") else warehouse),
                                   mode.removesuffix("-bi"), str(stop)],
                                  text=True, stdout=subprocess.PIPE) for mode in readers]
    try:
        for process in processes:
            assert process.stdout.readline().strip() == "ready"
        code = main(["build", "--raw-dir", str(root / "raw"), "--warehouse", str(warehouse),
                     "--as-of", after])
    finally:
        stop.touch()
        seen = [json.loads(process.communicate()[0]) for process in processes]
    return code, before, after, seen


@pytest.mark.slow
def test_the_build_succeeds_while_a_bi_connection_is_held_open(published, tmp_path):
    # one build with every kind of reader at once (a build costs ~20 s of CPU): a polling
    # reader, the one a BI dashboard is, never fails and sees the new marts
    root, warehouse = published
    code, before, after, [held, polled, held_bi, polled_bi] = _build_the_next_day_while(
        ["hold", "poll", "hold-bi", "poll-bi"], root, warehouse, tmp_path / "stop")
    assert code == 0, "the build failed while a BI connection was open"
    assert _as_of(warehouse) == after
    # on the warehouse and on the BI file alike (docs/privacy.md): the connection held open
    # keeps reading the file it opened, never a mix; a polling one sees the new file
    for held_one, polled_one in [(held, polled), (held_bi, polled_bi)]:
        assert held_one["failures"] == 0, held_one["errors"]
        assert held_one["as_of_seen"] == [before] and held_one["polls"] >= 2
        assert polled_one["failures"] == 0, polled_one["errors"]
        assert polled_one["as_of_seen"] == [before, after]


@pytest.mark.slow
def test_a_process_writing_the_warehouse_is_named_and_nothing_is_built(published, tmp_path,
                                                                       capsys):
    root, source = published
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse.write_bytes(source.read_bytes())
    before = query(warehouse, "select * from marts.customer_profile order by customer_id")
    writer = _start(HOLDER, warehouse, "rw")
    try:
        code = main(["build", "--raw-dir", str(root / "raw"), "--warehouse", str(warehouse),
                     "--as-of", AS_OF])
    finally:
        _stop_holder(writer)
    out, err = capsys.readouterr()
    assert code == 1
    assert f"{warehouse} is being written by process {writer.pid} (python" in err
    assert "read-write)" in err and "NOT published" in err
    assert "Traceback" not in out + err
    assert query(warehouse, "select * from marts.customer_profile order by customer_id") == before
    assert not candidate_path(warehouse).exists()  # refused before building anything


@pytest.fixture
def old_with_crashed_writer(tmp_path) -> Path:
    """A published file whose last writer died before folding its WAL into it."""
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema marts")
        con.execute("create table marts.customer_profile as select 1 as customer_id")
    subprocess.run([sys.executable, "-c", f"""
import os, duckdb
con = duckdb.connect({str(warehouse)!r})
con.execute("set checkpoint_threshold = '10GB'")
con.execute("insert into marts.customer_profile values (2)")
os._exit(0)
"""], check=True)
    assert Path(f"{warehouse}.wal").exists()
    return warehouse


def test_copy_and_publish_only_read_the_published_file(old_with_crashed_writer, tmp_path):
    """Neither the copy a build starts from nor the publish opens the warehouse read-write:
    with a BI reader holding it (and a crashed writer's WAL beside it) both go through."""
    from crm_tags.quality.publish import copy_warehouse, publish

    warehouse = old_with_crashed_writer
    reader = _start(HOLDER, warehouse, "ro")
    try:
        candidate = tmp_path / "candidate.duckdb"
        copy_warehouse(warehouse, candidate)
        assert not Path(f"{candidate}.wal").exists()  # folded into the copy
        assert query(candidate, "select customer_id from marts.customer_profile order by 1") == \
            [(1,), (2,)]
        with duckdb.connect(str(candidate)) as con:
            con.execute("insert into marts.customer_profile values (3)")
        publish(candidate, warehouse)
    finally:
        _stop_holder(reader)
    assert reader.returncode == 0
    assert not Path(f"{warehouse}.wal").exists()  # never replayed onto the new file
    assert query(warehouse, "select customer_id from marts.customer_profile order by 1") == \
        [(1,), (2,), (3,)]


def test_publish_refuses_while_a_process_writes_the_warehouse(old_with_crashed_writer,
                                                               tmp_path):
    from crm_tags.quality.publish import publish
    from crm_tags.warehouse_lock import WarehouseLocked

    warehouse = old_with_crashed_writer
    candidate = tmp_path / "candidate.duckdb"
    with duckdb.connect(str(candidate)) as con:
        con.execute("create table t as select 1 as x")
    before = os.stat(warehouse).st_ino
    writer = _start(HOLDER, warehouse, "rw")
    try:
        with pytest.raises(WarehouseLocked) as refused:
            publish(candidate, warehouse)
    finally:
        _stop_holder(writer)
    message = str(refused.value)
    assert message.startswith(f"Cannot publish over {warehouse} now: {warehouse} is being "
                              f"written by process {writer.pid} (python")
    assert message.endswith(", read-write). Let it finish (or stop it), then run again.")
    assert os.stat(warehouse).st_ino == before and candidate.exists()


def test_the_summary_names_the_process_writing_the_warehouse(old_with_crashed_writer, capsys):
    warehouse = old_with_crashed_writer
    writer = _start(HOLDER, warehouse, "rw")
    try:
        code = main(["summary", "--warehouse", str(warehouse)])
    finally:
        _stop_holder(writer)
    out, err = capsys.readouterr()
    assert code == 1
    assert f"Cannot read the summary now: {warehouse} is open in process {writer.pid} (python" \
        in err
    assert "Traceback" not in out + err


def test_a_scratch_build_never_writes_the_warehouse_bi_reads(old_with_crashed_writer, capsys):
    warehouse = old_with_crashed_writer
    before = warehouse.read_bytes()
    code = main(["build", "--scratch", str(warehouse), "--warehouse", str(warehouse)])
    assert code == 2
    assert "is the warehouse BI tools read" in capsys.readouterr().err
    assert warehouse.read_bytes() == before


@pytest.mark.slow
def test_a_scratch_build_names_the_bi_tool_holding_its_file(tmp_path, capsys):
    scratch = tmp_path / "dev.duckdb"
    duckdb.connect(str(scratch)).close()
    reader = _start(HOLDER, scratch, "ro")
    try:
        code = main(["build", "--scratch", str(scratch), "--raw-dir", str(tmp_path / "raw"),
                     "--as-of", AS_OF])
    finally:
        _stop_holder(reader)
    out, err = capsys.readouterr()
    assert code == 1
    assert f"{scratch} is open in process {reader.pid} (python" in err
    assert "read-only). DuckDB lets a process write a file only while no other process" in err
    assert "Traceback" not in out + err
