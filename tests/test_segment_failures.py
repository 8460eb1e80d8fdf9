"""A bad segment definition publishes nothing. On a published warehouse (the hand-made
landing zone of test_warehouse: its data holds the categories books and electronics, the seeds
configure more, such as software), each kind of mistake stops
`crm-tags build` (build_and_publish) before dbt starts, with a message naming the segment, its
line and column, and what was expected; the published file is untouched. The build's own
check (inside dbt, for a first build with no warehouse to read categories from) and Dagster's
code location stop on the same mistakes."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import LandingZone, query
from test_warehouse import AS_OF, write_scenario

from crm_tags import PROJECT_DIR
from crm_tags.build import DbtError, run_dbt
from crm_tags.quality.publish import build_and_publish
from crm_tags.segments.check import check_before_build

pytestmark = pytest.mark.slow

GOOD = """segments:
  - code: vip
    label_zh: VIP
    label_en: VIP
    owner: marketing
    description: grade vip
    where: customer_grade = 'vip'
  - code: software
    label_zh: 软件
    label_en: Software
    owner: marketing
    description: a category the seeds configure, though no product or visit of it is delivered
    where: browsing_interest has 'software'
"""


def bad_file(where: str, extra: str = "") -> str:
    return GOOD + f"""  - code: bad
    label_zh: 坏
    label_en: Bad
    owner: marketing
    description: a mistake
    where: {where}
""" + extra


BAD_LINE = 19  # the line of the bad segment's where

CASES = {
    "unknown tag": (
        bad_file("custmer_grade = 'vip'"), 12,
        ("unknown tag or metric 'custmer_grade'; expected a tag of the catalog or a profile "
        "metric (did you mean customer_grade?)")),
    "value outside the catalog": (
        bad_file("customer_grade = 'vvip'"), 29,
        ("'vvip' is not a value of customer_grade in the catalog; expected one of: important, "
        "ordinary, potential, vip")),
    "category the published warehouse does not know": (
        bad_file("browsing_interest has 'toys'"), 34,
        ("'toys' is not a value of browsing_interest in the shop's categories (seeds and data); "
        "expected one of: apparel, beauty, books, electronics")),
    "has on a single-valued tag": (
        bad_file("customer_grade has 'vip'"), 12,
        "'has' needs a multi-valued tag; customer_grade is single-valued"),
    "comparison on a tag": (
        bad_file("region > 'east'"), 12,
        "comparison '>' needs a profile metric; region is a tag"),
    "syntax error": (
        bad_file("customer_grade = 'vip' and"), 38,
        ("expected a tag, a metric, in_segment('code'), not, or '(', found the end of the "
        "expression")),
    "cycle": (
        bad_file("in_segment('worse')", """  - code: worse
    label_zh: 更坏
    label_en: Worse
    owner: marketing
    description: the other half of the cycle
    where: in_segment('bad')
"""), 12,
        "segments depend on each other in a cycle: bad -> worse -> bad"),
}


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("segment_failures")
    landing = LandingZone(root / "raw")
    write_scenario(landing)
    (root / "good.yml").write_text(GOOD, encoding="utf-8")
    warehouse = root / "bi" / "warehouse.duckdb"
    warehouse.parent.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CRM_SEGMENTS_FILE", str(root / "good.yml"))
        result = build_and_publish(landing.root, warehouse, AS_OF, target_path=root / "target",
                                   runtime_dir=root / "gx")
    assert result.published, result.report()
    return landing.root, warehouse


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", list(CASES))
def test_a_bad_definition_stops_the_build_before_dbt_and_publishes_nothing(
        published, tmp_path, monkeypatch, kind):
    raw, warehouse = published
    text, column, message = CASES[kind]
    path = tmp_path / "segments.yml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("CRM_SEGMENTS_FILE", str(path))
    before = digest(warehouse)
    target = tmp_path / "target"
    with pytest.raises(DbtError) as caught:
        build_and_publish(raw, warehouse, AS_OF, target_path=target, runtime_dir=tmp_path / "gx")
    error = str(caught.value)
    assert f"{path}:{BAD_LINE}:{column}: segment bad (where, offset {column - 12}): {message}" \
        in error, error
    assert "nothing was built" in error
    assert not (target / "run_results.json").exists()  # dbt never started
    assert digest(warehouse) == before
    assert query(warehouse, "select segment_code, member_count from marts.segment_catalog "
                            "order by 1") == [("software", 0), ("vip", 1)]


def test_validate_names_the_mistakes_and_passes_the_good_file(published, tmp_path, capsys):
    from crm_tags.cli import main

    _, warehouse = published
    path = tmp_path / "segments.yml"
    path.write_text(CASES["category the published warehouse does not know"][0], encoding="utf-8")
    assert main(["segments", "validate", str(path), "--warehouse", str(warehouse)]) == 1
    assert "'toys' is not a value of browsing_interest" in capsys.readouterr().err
    path.write_text(GOOD, encoding="utf-8")
    assert main(["segments", "validate", str(path), "--warehouse", str(warehouse)]) == 0
    assert "2 segment(s) valid" in capsys.readouterr().out


def test_without_a_warehouse_the_build_itself_checks_the_categories(published, tmp_path,
                                                                    monkeypatch):
    raw, warehouse = published
    path = tmp_path / "segments.yml"
    path.write_text(CASES["category the published warehouse does not know"][0], encoding="utf-8")
    monkeypatch.setenv("CRM_SEGMENTS_FILE", str(path))
    # a first build has no warehouse to read categories from: the check before dbt lets the
    # category value through, saying so ...
    assert "checked when the build runs" in check_before_build(None).notes[0]
    # ... and the model that reads the file checks it against the categories it has just built
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(warehouse, copy)
    with pytest.raises(DbtError) as caught:
        run_dbt(["build", "--select", "segment_definitions"], raw, copy, AS_OF,
                target_path=tmp_path / "target", quiet=True)
    assert "segment bad (where, offset 22): 'toys' is not a value of browsing_interest" \
        in str(caught.value)


def test_the_dagster_code_location_refuses_a_bad_file(published, tmp_path):
    _, warehouse = published
    path = tmp_path / "segments.yml"
    path.write_text(CASES["unknown tag"][0], encoding="utf-8")
    # the published build's manifest, newer than the project: the code location loads it
    # instead of running `dbt parse` first (orchestration/project.py, prepare_manifest)
    (tmp_path / "dbt_target").mkdir()
    shutil.copy(warehouse.parent.parent / "target" / "manifest.json", tmp_path / "dbt_target")
    env = {**os.environ, "CRM_SEGMENTS_FILE": str(path), "CRM_WAREHOUSE_PATH": str(warehouse),
           "CRM_DAGSTER_DBT_TARGET": str(tmp_path / "dbt_target")}
    result = subprocess.run([sys.executable, "-c", "import orchestration.definitions"],
                            cwd=PROJECT_DIR, env=env, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode != 0
    assert "segment bad (where, offset 0): unknown tag or metric 'custmer_grade'" in result.stderr
