"""Browser tests: the pages people open every day, loaded in headless Chromium.

Debian's `chromium` (/usr/bin/chromium; `.ci/run` installs it) is driven by Playwright from PyPI
through `executable_path`: no browser download. One browser per file (module fixture); each test
opens its own page, fails on any console error, and saves a screenshot in its tmp dir.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps dialling Google's hosts, which this
# machine's closed network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Page:
    """A page that records console errors and uncaught exceptions."""

    def __init__(self, browser, tmp_path: Path):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.errors: list[str] = []
        self.tmp_path = tmp_path
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def screenshot(self, name: str) -> Path:
        path = self.tmp_path / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def page(browser, tmp_path: Path) -> Iterator[Page]:
    opened = Page(browser, tmp_path)
    yield opened
    opened.page.close()


def test_chromium_renders_a_local_page(page: Page, tmp_path: Path) -> None:
    html = tmp_path / "index.html"
    html.write_text("<html><body><h1 id='t'>crm-tags</h1>"
                    "<script>document.getElementById('t').textContent += ' ok'</script></body></html>")
    page.page.goto(html.as_uri())
    assert page.page.inner_text("#t") == "crm-tags ok"
    assert page.screenshot("local_page").stat().st_size > 0
    assert page.errors == []


# --- Data Docs ---
# The quality gate's Data Docs (crm_tags.quality.data_docs) of a small warehouse, opened from
# disk with every request that is not a file blocked: they must load, styled, with no console
# error, show what each check measured, and every link must lead somewhere.


@pytest.fixture(scope="module")
def data_docs(tmp_path_factory) -> tuple[Path, Path]:
    """A consumer shop built with dbt (conftest.b2c_shop, shared with test_quality_gate.py) and
    gated again with two opt-in bounds, one of which fails, into a Data Docs site of its own;
    returns (the site's index.html, the run page)."""
    import yaml
    from conftest import b2c_shop

    from crm_tags import PROJECT_DIR
    from crm_tags.quality.gate import run_gate

    root = b2c_shop(tmp_path_factory)[0]
    warehouse = root / "warehouse.duckdb"
    policy = yaml.safe_load((PROJECT_DIR / "expectations" / "gate.yml").read_text())
    policy["distribution"]["bounds"] = {
        "customer_grade": {"*": {"min": 1.0}},  # holds: every customer is graded
        "recency": {"within_30d": {"max": 0.01}},  # fails: a measured share above it
    }
    (root / "gate.yml").write_text(yaml.safe_dump(policy))
    result = run_gate(warehouse, manifest=root / "target" / "manifest.json",
                      runtime_dir=root / "gx_bounds", policy=root / "gate.yml")
    assert not result.passed and result.data_docs and result.data_docs_run
    return result.data_docs, result.data_docs_run


def _offline(page: Page) -> list[str]:
    """Abort every request that does not read a local file; returns the list of those aborted."""
    blocked: list[str] = []

    def route(request_route) -> None:
        url = request_route.request.url
        if url.startswith(("file:", "data:")):
            request_route.continue_()
        else:
            blocked.append(url)
            request_route.abort()

    page.page.route("**/*", route)
    page.page.on("requestfailed", lambda r: page.errors.append(f"{r.url}: {r.failure}"))
    return blocked


def _links_resolve(page: Page) -> None:
    """Every link on the page names an existing file and, with a #fragment, an element of it."""
    from urllib.parse import unquote, urldefrag, urlparse

    for href in page.page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)"):
        url, fragment = urldefrag(href)
        assert url.startswith("file:"), href
        target = Path(unquote(urlparse(url).path))
        assert target.is_file(), href
        if fragment:
            assert f'id="{fragment}"' in target.read_text(encoding="utf-8"), href


@pytest.mark.slow
def test_data_docs_index_and_run_page_work_offline(page: Page, data_docs) -> None:
    import re

    index, run_page = data_docs
    blocked = _offline(page)

    page.page.goto(index.as_uri())
    header = page.page.locator("header")
    # styled from the page itself: the header's dark background, not a bare browser default
    assert header.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(36, 41, 47)"
    text = page.page.inner_text("body")
    assert "Quality gate · Data Docs" in text and "FAILED" in text
    for suite in ("landing_zone.contract", "core.referential_integrity",
                  "tag_marts.distribution_bounds", "authoritative_sources.lineage"):
        assert suite in text
    _links_resolve(page)
    page.screenshot("data_docs_index")

    page.page.click("text=run date 2025-06-30")
    assert page.page.url == run_page.as_uri()
    text = page.page.inner_text("body")
    # what was measured, against its bounds, and the count and examples of problems
    assert "measured 100.0% (expected at least 100.0%)" in text
    assert re.search(r"measured \d+\.\d% \(expected at most 1\.0%\)", text)
    assert "no problem found" in text and "0% unexpected" not in text
    assert "Blocking failures: the marts must not be published" in text
    _links_resolve(page)

    page.page.click("section >> text=tag_marts.distribution_bounds")
    assert page.page.url == run_page.as_uri() + "#suite-tag_marts-distribution_bounds"
    assert page.page.locator("#suite-tag_marts-distribution_bounds").is_visible()
    page.screenshot("data_docs_run")

    page.page.click("text=← all runs on this warehouse")
    assert page.page.url == index.as_uri()
    assert page.errors == [] and blocked == []


# --- Dagster UI ---------------------------------------------------------------------------------
# A warehouse built as `make demo` builds it (generated landing zone, build_and_publish), then a
# first start of `crm-tags dagster-dev` on it with an empty DAGSTER_HOME: the UI must show the
# warehouse's state (no "Never materialized" tag, no failed check) and each tag's catalog entry.

DAGSTER_CUSTOMERS = 200
# Waiting for the server to load the code location and for the warehouse-state sensor's first
# two ticks (30 s apart); not a measure of speed.
DAGSTER_START_TIMEOUT = 600

GRAPHQL_CHECKS = """
query {
  assetNodes {
    assetKey { path }
    assetMaterializations(limit: 1) { partition }
    assetChecksOrError {
      ... on AssetChecks { checks { name executionForLatestMaterialization { status } } }
    }
  }
}
"""


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(url: str, query: str) -> dict:
    import json
    import urllib.request

    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.load(response)
    assert "errors" not in body, body["errors"]
    return body["data"]


def _freshness_evaluated(url: str) -> bool:
    """Every tag's fresh_for_cadence check has a result for its latest materialisation."""
    import urllib.error

    try:
        nodes = _graphql(url, GRAPHQL_CHECKS)["assetNodes"]
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False
    checks = [
        check
        for node in nodes
        for check in (node["assetChecksOrError"] or {}).get("checks", [])
        if check["name"] == "fresh_for_cadence"
    ]
    return bool(checks) and all(c["executionForLatestMaterialization"] for c in checks)


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory) -> Iterator:
    """`crm-tags dagster-dev` on a freshly built demo warehouse; stopped after the section."""
    import datetime as dt
    import os
    import signal
    import subprocess
    import sys
    import time
    from types import SimpleNamespace

    from conftest import without_data_tests

    from crm_tags.generate import generate_landing_zone
    from crm_tags.quality.publish import build_and_publish

    root = tmp_path_factory.mktemp("dagster_ui")
    today = dt.date.today()  # what `make demo` builds for
    generate_landing_zone(root / "raw", DAGSTER_CUSTOMERS, seed=42, as_of=today)
    # without the dbt data tests (the generator's zone has them run in conftest.generated_shop):
    # the pages under test show what the published warehouse holds, which the gate audited
    with without_data_tests():
        result = build_and_publish(root / "raw", root / "warehouse.duckdb", today.isoformat(),
                                   target_path=root / "dbt_target", runtime_dir=root / "gx",
                                   full_refresh=True)
    assert result.published, result.report()

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = root / "dagster_dev.log"
    env = {**os.environ, "CRM_DAGSTER_DBT_TARGET": str(root / "dagster_target")}
    command = [str(Path(sys.executable).with_name("crm-tags")), "dagster-dev",
               "--port", str(port), "--dagster-home", str(root / "dagster_home"),
               "--raw-dir", str(root / "raw"), "--warehouse", str(root / "warehouse.duckdb")]
    with log.open("w") as out:
        server = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + DAGSTER_START_TIMEOUT
        while not _freshness_evaluated(url):
            assert server.poll() is None, f"dagster-dev exited:\n{log.read_text()[-5000:]}"
            assert time.monotonic() < deadline, (
                f"no freshness result after {DAGSTER_START_TIMEOUT} s:\n{log.read_text()[-5000:]}"
            )
            time.sleep(5)
        yield SimpleNamespace(url=url, root=root, log=log)
    finally:
        # dagster dev shuts its processes down on SIGINT; whatever is left goes with the group
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.wait(timeout=30)


def test_dagster_a_tag_asset_page_shows_its_catalog_entry_and_state(dagster_ui, page: Page):
    page.page.goto(f"{dagster_ui.url}/assets/tags/tag_customer_grade")
    page.page.get_by_text("Latest materialization").wait_for()
    page.page.get_by_text("RFM grade from the order system only").first.wait_for()
    text = page.page.inner_text("body")
    page.screenshot("dagster_tag_customer_grade")
    for expected in [
        "Customer grade · 客户等级 (customer_grade): RFM grade from the order system only.",
        "R (<=30:5, 31-90:3, >90:1)",  # the rule, its signs shown as written
        "sales-ops",
        "VIP客户",
        "潜在客户",
        "read from the published warehouse",  # the recorded materialisation says so
        "value_shares",
    ]:
        assert expected in text, expected
    for absent in ["Never materialized", "Raw SQL", "unserializable"]:
        assert absent not in text, absent
    assert page.errors == []


def test_dagster_a_fresh_start_shows_no_failed_check(dagster_ui, page: Page):
    nodes = _graphql(dagster_ui.url, GRAPHQL_CHECKS)["assetNodes"]
    tags = [n for n in nodes if n["assetKey"]["path"][0] == "tags"]
    assert tags and all(n["assetMaterializations"] for n in tags), "a tag never materialized"
    statuses = {
        ("/".join(n["assetKey"]["path"]), c["name"]): c["executionForLatestMaterialization"]
        for n in nodes
        for c in (n["assetChecksOrError"] or {}).get("checks", [])
    }
    failed = [k for k, e in statuses.items() if e and e["status"] != "SUCCEEDED"]
    assert failed == []
    fresh = {k: e["status"] for k, e in statuses.items() if k[1] == "fresh_for_cadence"}
    assert len(fresh) == len(tags) and set(fresh.values()) == {"SUCCEEDED"}

    page.page.goto(f"{dagster_ui.url}/assets/tags/tag_recency?view=checks")
    page.page.get_by_text("fresh: built as of").first.wait_for()
    text = page.page.inner_text("body")
    page.screenshot("dagster_tag_recency_checks")
    assert "Succeeded" in text and "Failed" not in text
    assert page.errors == []


def test_dagster_materialize_all_warns_of_no_missing_upstream(dagster_ui, page: Page):
    page.page.goto(f"{dagster_ui.url}/locations/orchestration.definitions/jobs/daily_tags")
    page.page.get_by_role("button", name="Materialize all").click()
    dialog = page.page.get_by_role("dialog")
    dialog.get_by_text("Partition selection").wait_for()
    dialog.get_by_text("Latest", exact=True).click()
    page.page.get_by_role("button", name="Launch 1 run").wait_for()
    text = dialog.inner_text()
    page.screenshot("dagster_daily_tags_materialize_all")
    assert "Upstream data missing" not in text
    assert "upstream" not in text.lower()
    assert page.errors == []


# --- dbt docs ---
# The dbt docs site as `crm-tags docs` writes it (one self-contained page), opened from disk with
# every request that is not local blocked: no console error, a tag model's page shows its
# catalog definition and rule, and the BI marts' exposures are listed with the marts they read.


@pytest.fixture(scope="module")
def dbt_docs_page(tmp_path_factory) -> Path:
    from conftest import docs_site

    return docs_site(tmp_path_factory).index  # generate_docs, once per run (also test_docs.py's)


def _dbt_docs_local_only(page: Page) -> list[str]:
    """Abort every request that leaves this machine; returns the URLs aborted."""
    from urllib.parse import urlparse

    blocked: list[str] = []

    def route(request_route) -> None:
        url = urlparse(request_route.request.url)
        if url.scheme in ("file", "data", "blob") or url.hostname in ("localhost", "127.0.0.1"):
            request_route.continue_()
        else:
            blocked.append(request_route.request.url)
            request_route.abort()

    page.page.route("**/*", route)
    page.page.on("requestfailed", lambda r: page.errors.append(f"{r.url}: {r.failure}"))
    return blocked


@pytest.mark.slow
def test_dbt_docs_show_catalog_definitions_and_exposures(page: Page, dbt_docs_page: Path) -> None:
    import yaml

    from crm_tags import PROJECT_DIR

    grade = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())["vars"]["tag_catalog"][
        "customer_grade"]
    blocked = _dbt_docs_local_only(page)

    page.page.goto(dbt_docs_page.as_uri())
    sidebar = page.page.locator(".menu").first
    sidebar.get_by_text("Exposures").wait_for()
    assert "crm_tags" in sidebar.inner_text()
    page.screenshot("dbt_docs_overview")

    # a tag model's page: its description is the catalog's definition and rule
    page.page.goto(dbt_docs_page.as_uri() + "#!/model/model.crm_tags.tag_customer_grade")
    description = page.page.locator(".model-markdown").first
    description.wait_for()
    assert description.inner_text().strip() == f"{grade['definition']}. Rule: {grade['rule']}"
    page.screenshot("dbt_docs_tag_customer_grade")

    # the exposures, from the sidebar: the BI dashboards and the marts they read
    page.page.goto(dbt_docs_page.as_uri())
    sidebar.get_by_text("Dashboard", exact=True).click()
    sidebar.locator('[data-nav-unique-id="exposure.crm_tags.bi_tag_dashboards"]').first.click()
    page.page.get_by_text("BI dashboards of the customer tags").first.wait_for()
    text = page.page.inner_text("body")
    assert "sales-ops" in text and "drill-down to the customers" in text
    depends_on = text.rsplit("Depends On", 1)[1]
    for mart in ("customer_tags", "customer_profile", "tag_catalog", "tag_value_labels"):
        assert mart in depends_on
    page.screenshot("dbt_docs_exposure")

    assert page.errors == [] and blocked == []


# --- Tag health report ---
# `crm-tags report` of a generated warehouse built at two run dates (so the trends have two
# points), opened from disk with every request that is not a file blocked: every plot renders
# as SVG with marks in it, the flags table lists the run's flags, no console error.


@pytest.fixture(scope="module")
def tag_health_report(tmp_path_factory) -> Path:
    from conftest import health_shop

    from crm_tags.report import write_report

    # a copy of the generated shop published on two run dates that test_tag_health.py checks
    root, _ = health_shop(tmp_path_factory)
    return write_report(root / "clean.duckdb", root / "report")


@pytest.mark.slow
def test_tag_health_report_renders_every_plot_offline(page: Page, tag_health_report: Path) -> None:
    blocked = _offline(page)
    page.page.goto(tag_health_report.as_uri())
    assert page.page.title() == "Tag health report 2024-12-31"
    plots = page.page.eval_on_selector_all(
        "svg.plot", "svgs => svgs.map(s => [s.dataset.plot, s.getBoundingClientRect().width,"
                    " s.querySelectorAll('rect, polyline, path, circle').length])")
    assert [p[0] for p in plots] == ["coverage", "trends", "transitions-lifecycle_stage",
                                     "transitions-customer_grade", "overlap", "calibration"]
    assert all(width > 100 and marks > 0 for _, width, marks in plots), plots
    # the catalog's labels in both languages
    assert "最近购买 / Recency" in page.page.inner_text("body")
    # the clean catalog's one flag, with its reason
    assert page.page.inner_text("#flags").count("too_many") == 1
    assert "7 tags > max_tags_per_dimension" in page.page.inner_text("#flags")
    assert page.screenshot("tag_health_report").stat().st_size > 0
    assert page.errors == [] and blocked == []
