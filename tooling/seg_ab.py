"""A/B of the daily job at N customers: with the twenty bench segments vs without the segment
models, on copies of one full-built warehouse, alternating (crm_tags.bench's own steps).
Adapted from the lead's /work/lead/seg_ab.py: this checkout's project, and the node times of
the segment layer (models and tests) of each run.

    .venv/bin/python tooling/seg_ab.py 100000 2 [label]

With SEG_AB_FROM=<run dir of an earlier A/B>, the full build is not repeated: its warehouse
(as of the full build) and next day's delivery are reused, and an untimed build of
segment_definitions alone parses this checkout (the timed runs start from that parse).
"""
import datetime as dt
import json
import os
import shutil
import sys
from pathlib import Path

from crm_tags import PROJECT_DIR, bench

N = int(sys.argv[1])
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
label = sys.argv[3] if len(sys.argv) > 3 else PROJECT_DIR.name
os.environ["CRM_SEGMENTS_FILE"] = str(PROJECT_DIR / "src/crm_tags/bench_segments.yml")
data = Path(os.environ.get("CRM_BENCH_DIR", "/tmp/crm-tags-bench"))
as_of = "2025-06-30"
raw, info = bench.ensure_landing_zone(data, N, 42, as_of, 0.0)
print("landing", info, flush=True)
run_dir = data / "runs" / f"seg_ab_{N}_{label}"
shutil.rmtree(run_dir, ignore_errors=True)
run_dir.mkdir(parents=True)
wh = run_dir / "warehouse.duckdb"
next_day = str(dt.date.fromisoformat(as_of) + dt.timedelta(days=1))
reuse = os.environ.get("SEG_AB_FROM")
if reuse:
    day2 = Path(reuse) / "raw_next_day"
    pristine = run_dir / "full.duckdb"
    shutil.copyfile(Path(reuse) / "warehouse.duckdb", pristine)
    shutil.copyfile(pristine, wh)
    parsed = run_dir / "target_parse"
    prep = bench.run_build("parse", day2, wh, next_day, parsed, project_dir=PROJECT_DIR,
                           unit_tests=False, select="segment_definitions")
    print("parse", prep.status, prep.seconds, prep.detail.get("error", ""), flush=True)
    pristine.replace(wh)
else:
    full = bench.run_build("dbt build (full)", raw, wh, as_of, run_dir / "target_full",
                           project_dir=PROJECT_DIR, unit_tests=False)
    print("full", full.status, full.seconds, full.cpu_seconds, full.detail.get("error", ""),
          flush=True)
    day2 = run_dir / "raw_next_day"
    bench.link_tree(raw, day2)
    bench.write_daily_delivery(day2, next_day)
    parsed = run_dir / "target_full"
sel = bench.daily_job_selection(parsed / "manifest.json", PROJECT_DIR)
seg = [m for m in sel if m.startswith("segment_")]
without = [m for m in sel if not m.startswith("segment_")]
print("selected", len(sel), "segment models", seg, flush=True)


def segment_nodes(target: Path) -> dict[str, float]:
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".", 2)[-1]: round(r["execution_time"], 2)
            for r in results if "segment" in r["unique_id"]}


results = []
for r in range(rounds):
    for name, selection in (("with", sel), ("without", without)):
        before = run_dir / "before.duckdb"
        shutil.copyfile(wh, before)
        target = run_dir / f"t_{name}"
        step = bench.run_build(f"daily {name}", day2, wh, next_day, target,
                               project_dir=PROJECT_DIR, unit_tests=False,
                               select=" ".join(selection), parsed_by=parsed)
        before.replace(wh)
        d = {k: v for k, v in step.__dict__.items() if k != "detail"}
        d["load"] = os.getloadavg()
        d["round"] = r
        prof = step.detail.get("profile", {})
        d["dbt_elapsed"] = prof.get("dbt_elapsed_seconds")
        d["by_type"] = prof.get("by_type")
        d["segments_layer"] = (prof.get("models_by_layer") or {}).get("marts/segments")
        d["segment_nodes"] = segment_nodes(target)
        d["segment_node_seconds"] = round(sum(d["segment_nodes"].values()), 2)
        if step.status != "ok":
            d["error"] = step.detail.get("error")
        print(json.dumps(d, default=str), flush=True)
        results.append(d)
(run_dir / "ab.json").write_text(json.dumps(results, default=str, indent=1))
