"""The segments file checked before anything runs: `crm-tags build`, build_and_publish, the
Dagster code location and `crm-tags segments validate` call this before dbt starts, so a bad
definition stops the run with its message (the build's own check, inside the dbt model, then
never has to).

Tags, levels and listed values come from the catalog (dbt_project.yml); the values of the
category tags are the categories the seeds configure (seeds/category_mapping.csv,
category_labels.csv) and those of the data in `warehouse` when it exists (a build's candidate is
a copy of the published warehouse, so these are the categories the published warehouse knows).
Without a warehouse the category values are left to the build, which checks them against the
categories it has just computed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb

from crm_tags import PROJECT_DIR
from crm_tags.build import DbtError
from crm_tags.catalog import read_catalog
from crm_tags.segments.definitions import (
    SegmentDefinitionError,
    SegmentFile,
    load_segments,
    segments_file,
    segments_file_configured,
)
from crm_tags.segments.vocabulary import CATEGORY_SEEDS, Vocabulary


def seed_categories(project_dir: Path | None = None) -> set[str]:
    """The category codes the seeds configure (seeds/category_mapping.csv, category_labels.csv)."""
    codes: set[str] = set()
    for name in CATEGORY_SEEDS:
        path = (project_dir or PROJECT_DIR) / "seeds" / f"{name}.csv"
        if path.exists():
            with path.open(newline="", encoding="utf-8") as handle:
                codes |= {row["category_code"].strip() for row in csv.DictReader(handle)
                          if (row.get("category_code") or "").strip()}
    return codes


def known_categories(warehouse: Path | None, project_dir: Path | None = None) -> set[str] | None:
    """Every category code the shop knows: the seeds' and those of the data in `warehouse`
    (core.dim_product_categories); None when there is no warehouse or it cannot be read now."""
    if warehouse is None or not Path(warehouse).exists():
        return None
    try:
        with duckdb.connect(str(warehouse), read_only=True) as con:
            data = {row[0] for row in con.sql(
                "select category_code from core.dim_product_categories").fetchall()}
    except duckdb.Error:
        return None
    return data | seed_categories(project_dir)


def catalog_vocabulary(warehouse: Path | None, project_dir: Path | None = None) -> Vocabulary:
    catalog = read_catalog((project_dir or PROJECT_DIR) / "dbt_project.yml")
    vocabulary = Vocabulary.from_catalog(catalog, known_categories(warehouse, project_dir))
    if warehouse is not None and Path(warehouse).exists() and vocabulary.notes:
        vocabulary.notes = [(f"{warehouse} could not be read: the category values are checked "
                            "when the build runs")]
    return vocabulary


def check_segments(path: Path | None = None, warehouse: Path | None = None,
                   project_dir: Path | None = None) -> SegmentFile:
    """Load and check the segments file (default: segments_file(project_dir)); raises
    SegmentDefinitionError listing every mistake."""
    required = path is not None or segments_file_configured()
    path = Path(path) if path is not None else segments_file(project_dir)
    return load_segments(path, catalog_vocabulary(warehouse, project_dir), required=required)


def check_before_build(warehouse: Path | None, project_dir: Path | None = None) -> SegmentFile:
    """check_segments for a build into `warehouse`; raises crm_tags.build.DbtError (what the
    build's callers report) with every mistake, before dbt starts."""
    try:
        return load_segments(segments_file(project_dir), catalog_vocabulary(warehouse, project_dir),
                             required=segments_file_configured())
    except SegmentDefinitionError as error:
        raise DbtError(str(error)) from error
