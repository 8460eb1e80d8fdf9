"""dbt Python models on engines that cannot run them (PostgreSQL): run on the crm-tags host.

The design (docs/engines.md, "Python models"): the Python models (the LTV fit, the ltv tag,
the hold-out check) stay one file each, run by dbt itself on DuckDB. On an engine without dbt
Python models they are disabled (dbt_project.yml) and a SQL stand-in of the same name
(models/engines/python_on_host/) takes their place in the graph: a view over
python_models.<name>, which this module fills. `crm-tags build` then runs dbt in waves:

  1. dbt build everything that is not downstream of a Python model;
  2. the Python models level by level (level 0 reads no Python model, level n + 1 reads one of
     level n, also through SQL models: a Python model reading customer_profile, which reads the
     ltv tag): call each model's own `model(dbt, session)` here, in the project folder, with its
     refs read from the engine into an in-memory DuckDB session (the relations the model code
     works with are then the same as under dbt-duckdb), write its result into
     python_models.<name> (replaced, or for an incremental model its unique_key rows
     replaced), then one dbt build of the nodes whose last Python ancestor is of that level:
     the stand-ins, what reads them, and their tests (plan_waves). One dbt invocation per
     level, not per model: each costs a dbt start-up.

The same code on the same inputs gives the same values: the LTV tag equals DuckDB's to 1e-6,
the segments' members equal DuckDB's (tests/test_postgres.py checks them row for row).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import resource
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from crm_tags import PROJECT_DIR

SCHEMA = "python_models"


def host_schema() -> str:
    """The schema this build writes the Python models' results into: python_models, or a
    write-audit-publish candidate's `python_models__candidate` ($CRM_SCHEMA_SUFFIX, as the
    stand-ins' source reads it: models/engines/python_on_host/_python_on_host__sources.yml)."""
    from crm_tags.build import SCHEMA_SUFFIX_ENV

    return SCHEMA + os.environ.get(SCHEMA_SUFFIX_ENV, "")

# Where a build in waves spends its time, for `crm-tags bench --target` (crm_tags.bench): off
# unless a caller records, so a build pays nothing for it.
_recorders: list[tuple[list[dict], Callable[[], dict[str, float]]]] = []


def own_cpu() -> dict[str, float]:
    """CPU seconds of this process and its waited-for children (dbt, a host-run model)."""
    self_, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return {"cpu_seconds": self_.ru_utime + self_.ru_stime + children.ru_utime + children.ru_stime}


@contextlib.contextmanager
def record_steps(counters: Callable[[], dict[str, float]] = own_cpu) -> Iterator[list[dict]]:
    """Collect the steps of the builds run inside the block (the load, each dbt wave, each
    host-run model): name, wall seconds and the increase of each of `counters()` (cumulative
    values, e.g. CPU seconds; the caller may also reap processes there)."""
    steps: list[dict] = []
    _recorders.append((steps, counters))
    try:
        yield steps
    finally:
        _recorders.remove((steps, counters))


@contextlib.contextmanager
def timed_step(name: str) -> Iterator[None]:
    """One step of a build, recorded when record_steps is active."""
    if not _recorders:
        yield
        return
    steps, counters = _recorders[-1]
    before, start = counters(), time.perf_counter()
    try:
        yield
    finally:
        seconds = time.perf_counter() - start
        after = counters()
        steps.append({"step": name, "seconds": round(seconds, 2),
                      **{key: round(after[key] - before.get(key, 0.0), 2) for key in after}})


def _arrow_type(data_type: str, precision, scale) -> pa.DataType:
    kind = data_type.lower()
    if kind in ("character varying", "text", "character", "varchar"):
        return pa.string()
    if kind == "integer":
        return pa.int32()
    if kind in ("bigint",):
        return pa.int64()
    if kind == "smallint":
        return pa.int16()
    if kind == "numeric":
        return pa.decimal128(int(precision), int(scale)) if precision is not None else pa.float64()
    if kind == "double precision":
        return pa.float64()
    if kind == "real":
        return pa.float32()
    if kind == "date":
        return pa.date32()
    if kind.startswith("timestamp"):
        return pa.timestamp("us")
    if kind == "boolean":
        return pa.bool_()
    return pa.string()


def _pg_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "text"
    if pa.types.is_int8(arrow_type) or pa.types.is_int16(arrow_type) or pa.types.is_int32(arrow_type):
        return "integer"
    if pa.types.is_integer(arrow_type):
        return "bigint"
    if pa.types.is_float32(arrow_type):
        return "real"
    if pa.types.is_floating(arrow_type):
        return "double precision"
    if pa.types.is_decimal(arrow_type):
        return f"numeric({arrow_type.precision},{arrow_type.scale})"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_boolean(arrow_type):
        return "boolean"
    raise TypeError(f"python_on_host: no PostgreSQL type for Arrow type {arrow_type}")


def read_relation(conn, schema: str, name: str) -> pa.Table:
    """A PostgreSQL table or view as an Arrow table with the matching types (on Spark: the
    connection's own, crm_tags.spark_host)."""
    if hasattr(conn, "read_relation"):
        return conn.read_relation(schema, name)
    with conn.cursor() as cur:
        cur.execute(
            "select column_name, data_type, numeric_precision, numeric_scale "
            "from information_schema.columns where table_schema = %s and table_name = %s "
            "order by ordinal_position",
            (schema, name),
        )
        columns = cur.fetchall()
        if not columns:
            raise RuntimeError(f"python_on_host: {schema}.{name} does not exist (build its model first)")
        schema_ = pa.schema([(c, _arrow_type(t, p, s)) for c, t, p, s in columns])
        cur.execute(f'select * from "{schema}"."{name}"')
        rows = cur.fetchall()
    arrays = []
    for i, field in enumerate(schema_):
        values = [row[i] for row in rows]
        if columns[i][1] == "numeric" and columns[i][2] is None:
            # an unconstrained numeric (a sum of integers or decimals): a decimal with the
            # scale its values need, so the Python model compares exact values as DuckDB does
            scale = max([-v.as_tuple().exponent for v in values if v is not None and v.is_finite()] or [0])
            field = pa.field(field.name, pa.decimal128(38, max(scale, 0)))
            schema_ = schema_.set(i, field)
        arrays.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(arrays, schema=schema_)


def write_table(conn, name: str, table: pa.Table, unique_key: str | list[str] | None = None) -> None:
    """Write `table` into python_models.<name> (host_schema): replaced, or its unique_key rows
    replaced."""
    if hasattr(conn, "write_table"):
        return conn.write_table(name, table, unique_key)
    from psycopg2.extras import execute_values

    keys = [unique_key] if isinstance(unique_key, str) else list(unique_key or [])
    schema = host_schema()
    relation = f'"{schema}"."{name}"'
    columns = ", ".join(f'"{f.name}" {_pg_type(f.type)}' for f in table.schema)
    with conn, conn.cursor() as cur:
        cur.execute(f'create schema if not exists "{schema}"')
        if keys:
            cur.execute(f"create table if not exists {relation} ({columns})")
            if table.num_rows:
                condition = " and ".join(f'"{k}" = %s' for k in keys)
                for values in {tuple(row[k] for k in keys) for row in table.select(keys).to_pylist()}:
                    cur.execute(f"delete from {relation} where {condition}", values)
        else:
            cur.execute(f"drop table if exists {relation} cascade")
            cur.execute(f"create table {relation} ({columns})")
        if table.num_rows:
            names = ", ".join(f'"{f.name}"' for f in table.schema)
            rows = [tuple(row[f.name] for f in table.schema) for row in table.to_pylist()]
            execute_values(cur, f"insert into {relation} ({names}) values %s", rows, page_size=5000)


class _Config:
    """dbt.config in a Python model: a call records the settings, .get reads them."""

    def __init__(self, node_config: dict):
        self._config = dict(node_config)

    def __call__(self, **kwargs: Any) -> None:
        self._config.update(kwargs)

    def get(self, key: str, default: Any = None) -> Any:
        return self._config.get(key, default)


class HostDbt:
    """The `dbt` object a Python model receives, over an engine connection."""

    def __init__(self, conn, session: duckdb.DuckDBPyConnection, manifest: dict, node: dict):
        self._conn, self._session, self._manifest = conn, session, manifest
        self.config = _Config(node.get("config") or {})

    def ref(self, name: str) -> duckdb.DuckDBPyRelation:
        node = _node_by_name(self._manifest, name)
        view = f"ref_{name}"
        if view not in {r[0] for r in self._session.execute("show tables").fetchall()}:
            self._session.register(f"{view}_arrow", read_relation(self._conn, node["schema"], node["alias"]))
            self._session.execute(f"create table {view} as select * from {view}_arrow")
            self._session.unregister(f"{view}_arrow")
        return self._session.table(view)


def _node_by_name(manifest: dict, name: str) -> dict:
    for node in manifest["nodes"].values():
        if node["resource_type"] in ("model", "seed", "snapshot") and node["name"] == name:
            return node
    raise RuntimeError(f"python_on_host: ref('{name}') is not an enabled node of the project")


def python_models(manifest: dict) -> list[dict]:
    """The project's Python models that the target runs on the host (disabled in dbt, with an
    enabled SQL stand-in of the same name), in graph order."""
    stand_ins = {n["name"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    found = {}
    for versions in manifest.get("disabled", {}).values():
        for node in versions:
            if node.get("language") == "python" and node["name"] in stand_ins:
                found[node["unique_id"]] = node
    ordered, done = [], set()

    def visit(unique_id: str) -> None:
        if unique_id in done:
            return
        done.add(unique_id)
        for parent in found[unique_id]["depends_on"]["nodes"]:
            if parent in found:
                visit(parent)
        ordered.append(found[unique_id])

    for unique_id in sorted(found):
        visit(unique_id)
    return ordered


def run_model(conn, manifest: dict, node: dict, project_dir: Path = PROJECT_DIR) -> pa.Table:
    """Run one Python model's `model(dbt, session)` on the host and store its result."""
    path = Path(project_dir) / node["original_file_path"]
    # dbt runs a model in the project folder (the segments file is found from there)
    spec = importlib.util.spec_from_file_location(f"crm_tags_host_model_{node['name']}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    session = duckdb.connect()
    try:
        dbt = HostDbt(conn, session, manifest, node)
        with contextlib.chdir(project_dir):
            result = module.model(dbt, session)
        if isinstance(result, duckdb.DuckDBPyRelation):
            result = result.arrow()
        if isinstance(result, pa.RecordBatchReader):
            result = result.read_all()
        if not isinstance(result, pa.Table):  # a pandas DataFrame
            result = pa.Table.from_pandas(result, preserve_index=False)
        incremental = dbt.config.get("materialized") == "incremental"
        write_table(conn, node["name"], result, dbt.config.get("unique_key") if incremental else None)
        return result
    finally:
        session.close()


def _parents(manifest: dict) -> dict[str, list[str]]:
    """Every enabled node (unit tests included) with its enabled parents."""
    nodes = {**manifest["nodes"], **manifest.get("unit_tests", {})}
    return {uid: [p for p in (node.get("depends_on") or {}).get("nodes", []) if p in nodes]
            for uid, node in nodes.items()}


def plan_waves(manifest: dict) -> list[tuple[list[dict], list[str]]]:
    """The Python models in the order they run on the host, in groups, each group with the dbt
    nodes to build right after it (by name): the nodes whose last Python ancestor is in the
    group (the stand-ins, what reads them and their data tests). A group holds the Python
    models of one level: level 0 has no Python model upstream, level n + 1 reads (also through
    SQL models: a Python model reading customer_profile, which reads the ltv tag) a model of
    level n and none higher. So a Python model runs after every Python model upstream of it and
    after the SQL models between them (built with the earlier group), and a group costs one
    dbt invocation however many models it holds. Nodes with no Python ancestor are built first
    (`--exclude <each Python model>+`)."""
    models = {m["name"]: m for m in python_models(manifest)}
    parents = _parents(manifest)
    stand_ins = {uid: n["name"] for uid, n in manifest["nodes"].items()
                 if n["resource_type"] == "model" and n["name"] in models}
    upstream: dict[str, set[str]] = {}
    level: dict[str, int] = {}
    for uid in _graph_order(parents):  # parents first: an ancestor's level is known
        upstream[uid] = set().union(*([{p} | upstream[p] for p in parents[uid]] or [set()]))
        if uid in stand_ins:
            level[uid] = 1 + max((level[p] for p in upstream[uid] if p in stand_ins), default=-1)
    levels = sorted(set(level.values()))
    waves: dict[int, list[str]] = {n: [] for n in levels}
    nodes = {**manifest["nodes"], **manifest.get("unit_tests", {})}
    for uid, node in nodes.items():
        reached = [level[p] for p in (upstream[uid] | {uid}) if p in stand_ins]
        if reached and node["resource_type"] != "unit_test":  # unit tests go with their model
            waves[max(reached)].append(node["name"])
    return [([models[stand_ins[uid]] for uid in sorted(level, key=stand_ins.get) if level[uid] == n],
             sorted(waves[n])) for n in levels]


def _graph_order(parents: dict[str, list[str]]) -> list[str]:
    """The nodes, parents before children."""
    ordered, done = [], set()
    for start in sorted(parents):
        stack = [(start, False)]
        while stack:
            uid, expanded = stack.pop()
            if expanded:
                ordered.append(uid)
            elif uid not in done:
                done.add(uid)
                stack.append((uid, True))
                stack.extend((p, False) for p in parents[uid] if p not in done)
    return ordered


def build_in_waves(run_dbt: Callable[[list[str]], str], connect: Callable[[], Any],
                   manifest_path: Callable[[], Path], build_args: list[str],
                   select: str | None = None) -> str:
    """dbt build on an engine without Python models (see the module docstring).

    run_dbt(args) runs one dbt command; connect() opens an engine connection (Spark: the
    session of the dbt process, crm_tags.spark_host); manifest_path() is the manifest dbt
    wrote; build_args: the build's own flags (--full-refresh ...). select: a dbt selection
    (`crm-tags build --select`, a Dagster job's assets): resolved once by `dbt ls`, then each
    wave builds its part of the selection, and a selected stand-in's Python model runs on the
    host before it (a selection never reads a stand-in over a stale or missing result).
    Each dbt build's run_results.json is kept in <target>/run_results/ (RUN_RESULTS), in the
    order they ran: what Dagster reports per asset and check."""
    results = manifest_path().parent / RUN_RESULTS
    shutil.rmtree(results, ignore_errors=True)
    steps = iter(range(1000))

    def build(args: list[str]) -> str:
        produced = manifest_path().parent / "run_results.json"
        produced.unlink(missing_ok=True)  # a failed start must not leave the last one's
        try:
            return run_dbt(["build", *build_args, *args])
        finally:
            if produced.exists():
                results.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(produced, results / f"{next(steps):03d}.json")

    selected: set[str] | None = None
    computed = "*"
    if select:
        # dbt resolves the selection (any syntax) and writes the manifest that plans the waves
        listed = run_dbt(["ls", "--select", select, "--output", "json",
                          "--output-keys", "unique_id"])
        selected = {json.loads(line)["unique_id"] for line in listed.splitlines()
                    if line.startswith('{"unique_id"')}
        manifest = json.loads(manifest_path().read_text())
        computed = ",".join(sorted(manifest["nodes"][uid]["name"] for uid in selected
                                   if uid in manifest["nodes"]
                                   and manifest["nodes"][uid]["resource_type"] == "model"))
    # The tag models this build computes (all, or the selection's), for tag_runs and the
    # histories (macros/history.sql computed_tag_codes): each wave's own selection holds only
    # some of them. An environment variable read only while a node runs, not --vars: a --vars
    # that an earlier dbt run did not get makes dbt parse the whole project again.
    with _environment(COMPUTED_TAG_MODELS_ENV, computed or "-"):
        # wave 0 first, everything not downstream of a stand-in (they all live in STAND_INS);
        # the manifest it writes plans the next waves, so no `dbt parse` of its own
        with timed_step("dbt wave 0: everything not downstream of a Python model"):
            output = build([*(["--select", select] if select else []),
                            "--exclude", f"path:{STAND_INS}+"])
        manifest = json.loads(manifest_path().read_text())
        waves = plan_waves(manifest)
        names = {m["name"] for group, _ in waves for m in group}
        stand_ins = [n["original_file_path"] for n in manifest["nodes"].values()
                     if n["resource_type"] == "model" and n["name"] in names]
        misplaced = sorted(path for path in stand_ins if not path.startswith(f"{STAND_INS}/"))
        if misplaced:
            raise RuntimeError(f"python_on_host: the stand-ins {', '.join(misplaced)} are not in "
                               f"{STAND_INS}/, so the first wave built them before their Python "
                               "models ran: move them there")
        if selected is not None:
            waves = _selected_part(waves, manifest, selected)
        conn = connect() if waves else None
        try:
            for group, names in waves:
                for node in group:
                    with timed_step(f"host-run Python model {node['name']}"):
                        run_model(conn, manifest, node)
                if not names:
                    continue
                # the stand-ins, what reads them (last), the data tests listed; unit tests of
                # those models (cautious: their only parent is selected)
                last = ", ".join(node["name"] for node in group) or "the selection"
                with timed_step(f"dbt wave after {last} ({len(names)} nodes)"):
                    output += build(["--select", *names, "--indirect-selection", "cautious"])
        finally:
            if conn is not None:
                conn.close()
    return output


def _selected_part(waves: list[tuple[list[dict], list[str]]], manifest: dict, selected: set[str]
                   ) -> list[tuple[list[dict], list[str]]]:
    """The waves of a selection: the Python models whose stand-in is selected (run on the
    host: the stand-in reads their result), and the selected nodes of each wave."""
    names = {node["name"] for uid, node in {**manifest["nodes"],
                                            **manifest.get("unit_tests", {})}.items()
             if uid in selected}
    part = [([m for m in group if m["name"] in names], [n for n in wave if n in names])
            for group, wave in waves]
    return [(group, wave) for group, wave in part if group or wave]


# Where the SQL stand-ins of the Python models live (every one: wave 0 excludes this folder).
STAND_INS = "models/engines/python_on_host"
COMPUTED_TAG_MODELS_ENV = "CRM_COMPUTED_TAG_MODELS"
# each dbt build of a build in waves keeps its run_results.json here, under the target dir
RUN_RESULTS = "run_results"


@contextlib.contextmanager
def _environment(name: str, value: str):
    """$name = value for the dbt processes started inside (they inherit os.environ)."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before
