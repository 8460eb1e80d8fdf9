"""The README's main job, end to end on a small generated landing zone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import query

pytestmark = pytest.mark.slow


def test_demo_generates_builds_validates_and_summarises(tmp_path: Path):
    """One build (--history-days 0): the demo's default first build a day earlier is the same
    build_and_publish for another date (a whole build and gate, ~15 s); the history over
    several runs is test_history.py's."""
    crm_tags = Path(sys.executable).with_name("crm-tags")
    warehouse = tmp_path / "warehouse.duckdb"
    # a fresh machine: no masking key anywhere, the demo makes one in the user's config dir
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_MASKING_KEY")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    result = subprocess.run(
        [str(crm_tags), "demo", "--customers", "400", "--as-of", "2025-06-30", "--history-days", "0",
         "--raw-dir", str(tmp_path / "raw"), "--warehouse", str(warehouse)],
        capture_output=True, text=True, check=False, env=env,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    key = tmp_path / "config" / "crm-tags" / "masking.key"
    assert f"generated a masking key at {key} (outside the repository" in result.stdout
    bi = tmp_path / "warehouse.bi.duckdb"
    assert f"BI tools connect to {bi}: schema marts only" in result.stdout
    assert query(bi, "select distinct table_schema from information_schema.tables") == [("marts",)]
    assert "Tag summary as of 2025-06-30" in result.stdout
    # the stewards' tag-health report, written next to the warehouse, its path printed
    report = tmp_path / "reports" / "tag-health-report.html"
    assert f"Tag health report (open in a browser, works offline): {report}" in result.stdout
    assert "Tag health report 2025-06-30" in report.read_text(encoding="utf-8")
    assert "customer_grade" in result.stdout and "ok" in result.stdout
    assert "1 run date(s) since 2025-06-30" in result.stdout  # the tag history's section
    customers = query(warehouse, "select count(*) from marts.customer_profile")[0][0]
    assert 350 <= customers <= 400  # a few generated accounts are deleted
    grades = query(warehouse, "select count(*) from marts.customer_tags where tag_code = 'customer_grade'")
    assert grades == [(customers,)]
    # the shipped segments (segments/segments.yml), each with its member count
    assert "Segments as of 2025-06-30" in result.stdout
    segments = query(warehouse, "select segment_code, member_count from marts.segment_catalog")
    assert {"vip_frequent", "electronics_browsers_not_blacklisted", "win_back"} <= {
        code for code, _ in segments}
    lines = result.stdout.splitlines()
    for code, members in segments:
        assert any(line.split()[:1] == [code] and f"{members:,}" in line for line in lines), code
