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


# --- dbt docs ---
# The dbt docs site as `crm-tags docs` writes it (one self-contained page), opened from disk with
# every request that is not local blocked: no console error, a tag model's page shows its
# catalog definition and rule, and the BI marts' exposures are listed with the marts they read.


@pytest.fixture(scope="module")
def dbt_docs_page(tmp_path_factory) -> Path:
    from crm_tags.docs import generate_docs

    work = tmp_path_factory.mktemp("dbt_docs")
    return generate_docs(work / "site", work_dir=work / "work").index


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
