"""The segment layer's data-dependent statements, old (two tables: segment_matches, then
segment_members over it) against new (segment_members in one statement), on a copy of a
warehouse built by `tooling/seg_ab.py`; CPU (all DuckDB threads) and wall, alternating.

    .venv/bin/python tooling/seg_statements.py WAREHOUSE OLD_MEMBERS_SQL NEW_MEMBERS_SQL [rounds]

OLD_MEMBERS_SQL / NEW_MEMBERS_SQL: the compiled segment_members.sql of each version (dbt's
target/compiled); the old segment_matches statement is membership_sql with bound values.
"""
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import duckdb

from crm_tags import PROJECT_DIR
from crm_tags.segments.compile import membership_sql
from crm_tags.segments.definitions import load_segments
from crm_tags.segments.vocabulary import Vocabulary, configured_categories

source, old_sql, new_sql = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 3
copy = Path("/tmp") / f"seg_statements_{os.getpid()}.duckdb"
shutil.copyfile(source, copy)
con = duckdb.connect(str(copy))
con.execute("set memory_limit = '6GB'")
categories = configured_categories(con, ["(select * from reference.category_mapping)",
                                         "(select * from reference.category_labels)"])
vocabulary = Vocabulary.from_warehouse(con, "(select * from reference.tag_definitions)",
                                       "(select * from reference.tag_value_definitions)",
                                       categories)
file = load_segments(PROJECT_DIR / "src/crm_tags/bench_segments.yml", vocabulary)
matches = membership_sql(file, vocabulary, "(select * from marts.customer_profile)",
                         "(select * from marts.customer_tags)")
old_members = old_sql.read_text().replace('"intermediate"."segment_matches"', "old_matches")
new_members = new_sql.read_text()


def timed(label, statements):
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    for sql, params in statements:
        con.execute(sql, params)
    wall = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    rows = con.sql("select count(*) from members_out").fetchone()[0]
    print(f"{label}: {cpu:.2f} s CPU, {wall:.2f} s wall, {rows} rows, load {os.getloadavg()[0]:.1f}",
          flush=True)
    return cpu, wall


variants = {
    "old (matches, then members)": [
        (f"create or replace table old_matches as {matches.sql}", matches.params),
        (f"create or replace table members_out as {old_members}", None)],
    "new (one statement)": [(f"create or replace table members_out as {new_members}", None)],
    "new without order by": [(
        "create or replace table members_out as " + new_members.rsplit("order by", 1)[0],
        None)],
}
timed("warm-up", variants["old (matches, then members)"])
results = {k: [] for k in variants}
for _ in range(rounds):
    for name, statements in variants.items():
        results[name].append(timed(name, statements))
for name, values in results.items():
    cpu = sorted(v[0] for v in values)[len(values) // 2]
    wall = sorted(v[1] for v in values)[len(values) // 2]
    print(f"median {name}: {cpu:.2f} s CPU, {wall:.2f} s wall")
con.close()
copy.unlink()
