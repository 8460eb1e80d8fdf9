"""Shared fixtures: hand-made landing zones written with the contract schema, and dbt builds."""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import pickle
import shutil
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from crm_tags import PROJECT_DIR
from crm_tags.build import build
from crm_tags.contract import write_delivery

# Publishing pseudonymises the BI file with a key kept outside the repository (docs/privacy.md);
# the tests' one, for every build and the subprocesses they start.
os.environ.setdefault("CRM_MASKING_KEY", "tests-only-masking-key")


class LandingZone:
    """Collects rows per raw table and writes them as delivery files (one file per call)."""

    def __init__(self, root: Path):
        self.root = root
        self._files = 0

    def deliver(self, table: str, rows: list[dict], name: str | None = None) -> Path:
        self._files += 1
        return write_delivery(self.root, table, rows, name or f"delivery_{self._files:03d}.parquet")


def build_warehouse(raw_dir: Path, warehouse: Path, as_of: str, tmp_path: Path,
                    unit_tests: bool = False, select: str | None = None) -> Path:
    """dbt build into `warehouse`; a per-test target dir keeps parallel runs apart. The dbt unit
    tests test the SQL, not a landing zone: they run once, in test_warehouse.py's build
    (unit_tests=True there), not again in every build of hand-made data. select: only the
    models a test reads and what they are built from (dbt's `+model`), with the data tests of
    those models alone (cautious: not a test that also reads a model left out)."""
    with pytest.MonkeyPatch.context() as patch:
        if select:
            patch.setenv("DBT_INDIRECT_SELECTION", "cautious")
        build(raw_dir, warehouse, as_of, select=select, target_path=tmp_path / "dbt_target",
              quiet=True, unit_tests=unit_tests)
    return warehouse


def build_reference(raw_dir: Path, warehouse: Path, as_of: str, target_path: Path,
                    select: str | None = None) -> Path:
    """A from-scratch dbt build that only serves as the expected tables of a comparison
    (incremental vs full rebuild, history vs fresh build): seeds and models, without the dbt
    data tests, which check the data, not the tables compared (the builds under test run
    them), and without unit tests (build_warehouse). select: only the tables compared and
    what they are built from (dbt's `+model`)."""
    from crm_tags.build import run_dbt

    run_dbt(["build", "--exclude-resource-type", "test", "--exclude-resource-type", "unit_test",
             *(["--select", select] if select else [])],
            raw_dir, warehouse, as_of, target_path, quiet=True)
    return warehouse


@contextlib.contextmanager
def gated_builds_running(data_tests: str) -> Iterator[None]:
    """Within it, the dbt builds of build_and_publish (and of backfill and `crm-tags validate
    --build-and-publish`, which run it) build every seed and model but run only the data tests
    `data_tests` selects (a dbt selection method, e.g. path:models/marts/history); none at
    all: without_data_tests.
    For builds whose data the project's data tests checked elsewhere already (test_warehouse.py
    runs them all on hand-made data, the shared shops on generated data), or that make data
    only a few of them are about. A build given its own selection keeps it; the gate, after
    dbt, is unchanged."""
    from crm_tags.build import build
    from crm_tags.quality import publish

    everything = f"resource_type:seed resource_type:model {data_tests},resource_type:test"

    def build_running_those(*args: Any, select: str | None = None, **kwargs: Any) -> str:
        return build(*args, select=select or everything, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_INDIRECT_SELECTION", "empty")  # no test of a selected model but those
        patch.setattr(publish, "build", build_running_those)
        yield


@contextlib.contextmanager
def without_data_tests() -> Iterator[None]:
    """Every `dbt build` started in this block (build, build_and_publish, `crm-tags build`)
    leaves out the dbt data tests: for builds of a landing zone whose data tests an earlier
    build of the same test already ran, or whose file asserts on what the build publishes,
    not on what dbt's tests check. The gate still audits each candidate."""
    import crm_tags.build

    run_dbt = crm_tags.build.run_dbt

    def run_dbt_without_tests(args: list[str], *rest: Any, **options: Any) -> str:
        if args and args[0] == "build":
            args = [*args, "--exclude-resource-type", "test"]
        return run_dbt(args, *rest, **options)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(crm_tags.build, "run_dbt", run_dbt_without_tests)
        yield


def copy_project(project: Path) -> Path:
    """A copy of the dbt project (models, macros, seeds, data tests) to change in a test; build
    it with `build(..., project_dir=project)`."""
    for part in ["models", "macros", "seeds", "tests/dbt"]:
        shutil.copytree(PROJECT_DIR / part, project / part)
    shutil.copy(PROJECT_DIR / "dbt_project.yml", project)
    return project


def shared_build(tmp_path_factory: pytest.TempPathFactory, name: str,
                 make: Callable[[Path], Any]) -> tuple[Path, Any]:
    """A directory that `make(directory)` fills (a generated landing zone and the warehouse
    built from it), made once per test run and shared by the test files that need the same one,
    whichever xdist worker runs them: returns a private copy of it and what `make` returned
    (pickled, so its paths name the shared original). Build what several files only read or
    copy; a file that changes it works on its copy."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's directory, shared by its workers
    shared = base / "shared" / name
    shared.parent.mkdir(exist_ok=True)
    with open(shared.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the other workers wait for the first one's build
        if not (shared / ".made").exists():
            shutil.rmtree(shared, ignore_errors=True)
            shared.mkdir()
            (shared / ".made.pickle").write_bytes(pickle.dumps(make(shared)))
            (shared / ".made").touch()
    copy = tmp_path_factory.mktemp(name)
    shutil.copytree(shared, copy, dirs_exist_ok=True)
    return copy, pickle.loads((copy / ".made.pickle").read_bytes())


GENERATED_AS_OF = "2025-06-30"
GENERATED_CUSTOMERS = 300  # enough for the gate's distribution checks (min_customers = 100)


def publish_shop(root: Path) -> Any:
    """build_and_publish of root/raw into root/warehouse.duckdb as of GENERATED_AS_OF (dbt's
    target root/target, GX's root/gx), the erasure log beside the warehouse."""
    from crm_tags.quality.publish import build_and_publish

    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("CRM_ERASURE_LOG", raising=False)
        return build_and_publish(root / "raw", root / "warehouse.duckdb", GENERATED_AS_OF,
                                 target_path=root / "target", runtime_dir=root / "gx")


def generated_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The generator's clean landing zone of 300 customers (its default seed), built, gated and
    published as of 2025-06-30, once per run (shared_build). Returns (root, the PublishResult):
    root/raw, root/warehouse.duckdb and its BI file, root/target (dbt's manifest), root/gx."""
    from crm_tags.generate import generate_landing_zone

    def make(root: Path) -> Any:
        generate_landing_zone(root / "raw", GENERATED_CUSTOMERS,
                              as_of=dt.date.fromisoformat(GENERATED_AS_OF))
        result = publish_shop(root)
        assert result.published, result.report()
        return result

    return shared_build(tmp_path_factory, "generated_shop", make)


DIRTY_SHARE = 0.03


def dirty_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The generator's dirty landing zone (every kind of its dirt, share 0.03) of 300 customers
    (its default seed), built, gated and published as of 2025-06-30, once per run
    (shared_build; test_quality_gate.py's dirty data, test_incremental.py's first day).
    Returns (root, (the PublishResult, the generator's stats)): root/raw,
    root/warehouse.duckdb, root/target (dbt's manifest), root/gx."""
    from crm_tags.generate import generate_landing_zone

    def make(root: Path) -> Any:
        stats = generate_landing_zone(root / "raw", GENERATED_CUSTOMERS,
                                      as_of=dt.date.fromisoformat(GENERATED_AS_OF),
                                      dirty=DIRTY_SHARE)
        return publish_shop(root), stats

    return shared_build(tmp_path_factory, "dirty_shop", make)


def b2c_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """write_b2c_shop's consumer shop with provinces, built, gated and published as of
    2025-06-30, once per run (shared_build; test_quality_gate.py's consumer shop, the Data Docs
    in test_browser.py). Returns (root, the PublishResult): root/raw, root/warehouse.duckdb,
    root/target (dbt's manifest), root/gx."""

    def make(root: Path) -> Any:
        write_b2c_shop(LandingZone(root / "raw"), GENERATED_AS_OF, provinces=True)
        return publish_shop(root)

    return shared_build(tmp_path_factory, "b2c_shop", make)


HEALTH_FIRST, HEALTH_RUN = "2024-12-20", "2024-12-31"  # eleven days: a weekly tag can go stale
HEALTH_CUSTOMERS = 1500


def health_shop(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """The generator's landing zone of 1,500 customers (seed 7), published on 2024-12-20 and
    on 2024-12-31 into one warehouse (the tag health's history over two runs), once per run
    (shared_build; test_tag_health.py, the tag health report in test_browser.py). Returns
    (root, [the two PublishResults]): root/raw, root/clean.duckdb and its BI file, root/gx."""
    from crm_tags.generate import generate_landing_zone
    from crm_tags.quality.publish import build_and_publish

    def make(root: Path) -> Any:
        raw = root / "raw"
        generate_landing_zone(raw, HEALTH_CUSTOMERS, seed=7, as_of=dt.date.fromisoformat(HEALTH_RUN))
        first = build_and_publish(raw, root / "clean.duckdb", HEALTH_FIRST, runtime_dir=root / "gx")
        # the same deliveries at a later date: the first build ran the dbt data tests on them,
        # and test_tag_health.py asserts on the health marts themselves (the gate audits both)
        with without_data_tests():
            return [first, build_and_publish(raw, root / "clean.duckdb", HEALTH_RUN,
                                             runtime_dir=root / "gx")]

    return shared_build(tmp_path_factory, "health_shop", make)


def docs_site(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The dbt docs site as `crm-tags docs` writes it, generated once per run (shared_build;
    test_docs.py, test_browser.py): a copy's DocsSite."""
    from crm_tags.docs import DocsSite, generate_docs

    def make(root: Path) -> None:
        generate_docs(root / "site")

    site = shared_build(tmp_path_factory, "docs_site", make)[0] / "site"
    return DocsSite(site / "index.html", site / "manifest.json", site / "catalog.json")


def import_code_location(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The Dagster code location's modules (orchestration/), imported once per process with
    their dbt target dir outside target/ and the project parsed for the duckdb target (the asset
    keys are the same on every target; a run's engine is $CRM_TARGET when it runs):
    tests/test_orchestration.py and the Dagster run on PostgreSQL in tests/test_postgres.py."""
    import sys

    target = os.environ.get("CRM_DAGSTER_DBT_TARGET") or str(tmp_path_factory.mktemp("dbt_target"))
    if str(PROJECT_DIR) not in sys.path:
        sys.path.insert(0, str(PROJECT_DIR))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRM_DAGSTER_DBT_TARGET", target)  # read once, at import
        patch.setenv("CRM_TARGET", "duckdb")
        from orchestration import definitions
    return definitions


def query(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql).fetchall()


def ts(as_of: str, days_ago: int, hour: int = 10) -> dt.datetime:
    """A timestamp `days_ago` days before the run date (negative = after it)."""
    return dt.datetime.fromisoformat(as_of) - dt.timedelta(days=days_ago) + dt.timedelta(hours=hour)


@pytest.fixture
def landing(tmp_path: Path) -> LandingZone:
    return LandingZone(tmp_path / "raw")


def write_b2c_shop(landing: LandingZone, as_of: str, *, provinces: bool, customers: int = 120) -> None:
    """A consumer shop, unlike the generator's B2B-heavy population: every account is B2C (no
    industry, no employee count, so no company_size), baskets are small (no customer reaches the
    VIP grade), a sixth of the accounts never bought, and with provinces=False no account says
    where it is (no region). Deterministic: customer i's orders follow from i alone."""
    places = ["广东省", "浙江省", "北京市", "四川省", "湖北省", "辽宁省"]
    landing.deliver("crm/accounts", [
        {"account_id": f"c{i:03d}", "account_name": f"顾客{i}", "customer_type": "B2C",
         "province": places[i % len(places)] if provinces else None,
         "updated_at": ts(as_of, 500), "is_deleted": False}
        for i in range(customers)
    ])
    landing.deliver("orders/products", [
        {"product_id": "p1", "product_name": "小说", "category": "图书", "list_price": Decimal("39.00")},
        {"product_id": "p2", "product_name": "耳机", "category": "电子产品", "list_price": Decimal("199.00")},
        {"product_id": "p3", "product_name": "台灯", "category": "home", "list_price": Decimal("89.00")},
    ])
    orders, items, tickets = [], [], []
    for i in range(customers):
        if i % 6 == 5:
            continue  # never bought
        # at most three purchases a year (purchase_frequency low): never a VIP grade
        for n in range(1 + i % 3):
            order_id = f"o{i:03d}_{n}"
            days_ago = (i * 7 + n * 97) % 400
            orders.append({"order_id": order_id, "account_id": f"c{i:03d}", "order_ts": ts(as_of, days_ago),
                           "status": "completed", "sales_channel": "online",
                           "_ingested_at": ts(as_of, days_ago, 12)})
            product, price = [("p1", "39.00"), ("p2", "199.00"), ("p3", "89.00")][(i + n) % 3]
            items.append({"order_id": order_id, "line_no": 1, "product_id": product, "quantity": 1 + n,
                          "unit_price": Decimal(price), "discount_amount": Decimal("0.00"),
                          "unit_cost": Decimal(price) * Decimal("0.6")})
        if i % 10 == 0:
            tickets.append({"ticket_id": f"t{i:03d}", "account_id": f"c{i:03d}", "channel": "online_chat",
                            "ticket_type": "inquiry", "opened_at": ts(as_of, i % 200), "satisfaction_score": 4})
    landing.deliver("orders/orders", orders)
    landing.deliver("orders/order_items", items)
    landing.deliver("support/tickets", tickets)


# The test files by how long they take, longest first (docs/benchmark.md, "Test suite"). `make
# test` hands whole files to the two workers (--dist loadfile) in collection order
# (--no-loadscope-reorder: xdist would otherwise start with the files that have the most
# tests, often quick ones), so the longest start first and the workers finish together. A file
# not listed (a new one) goes first: it may be long; if it is quick it costs nothing there.
LONGEST_FIRST = [
    "test_spark.py",  # the longest: one Spark build and one Spark process reading it, per file
    "test_postgres.py",  # every PostgreSQL test shares the one server of this file
    "test_history.py",
    "test_quality_gate.py",
    "test_browser.py",
    "test_incremental.py",
    "test_warehouse.py",
    "test_orchestration.py",
    "test_tag_health.py",
    "test_segments.py",
    "test_privacy.py",
    "test_ltv.py",
    "test_ltv_card.py",
    "test_bench.py",
    "test_segment_failures.py",
    "test_demo.py",
    "test_bi_readers.py",
    "test_add_a_tag.py",
    "test_docs.py",
    "test_generate.py",
    "test_segment_language.py",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, -1))  # stable: a file's order is kept
