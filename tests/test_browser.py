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
