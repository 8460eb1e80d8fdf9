"""What the dbt Python model segment_definitions runs (kept here, importable and tested).

It reads the segments file and checks it against the catalog tables this very build has
just made (reference.tag_definitions, reference.tag_value_definitions: the category tags'
values are the categories of this run's data) and the category seeds, so a bad definition
fails the build and nothing is published. `crm-tags build` and Dagster check the file before dbt starts as well
(crm_tags.segments.check.check_before_build). Each segment's row carries its condition compiled to
SQL (values as escaped literals), which the SQL model segment_members runs for all segments in
one statement (macros/segments.sql).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from crm_tags.segments.compile import segment_conditions
from crm_tags.segments.definitions import (
    SegmentFile,
    load_segments,
    segments_file,
    segments_file_configured,
)
from crm_tags.segments.vocabulary import Vocabulary, configured_categories

DEFINITION_SCHEMA = pa.schema([
    ("segment_code", pa.string()),
    ("label_zh", pa.string()),
    ("label_en", pa.string()),
    ("owner", pa.string()),
    ("description", pa.string()),
    ("where_expression", pa.string()),
    ("priority_list", pa.string()),
    ("priority_rank", pa.int32()),
    ("holdout_percent", pa.decimal128(5, 2)),
    ("holdout_salt", pa.string()),
    ("tags_read", pa.string()),
    ("metrics_read", pa.string()),
    ("segments_read", pa.string()),
    ("evaluation_order", pa.int32()),
    ("definition_hash", pa.string()),
    ("member_condition", pa.string()),
    ("source_file", pa.string()),
    ("source_line", pa.int32()),
])


# The relation the member conditions read the multi-valued tags from: a CTE of the model
# segment_members (marts.customer_tags).
MEMBER_TAGS = "segment_tags"


def relation_sql(relation: duckdb.DuckDBPyRelation) -> str:
    """A dbt ref (a DuckDB relation) as a subquery to select from."""
    return f"({relation.sql_query()})"


def checked_file(project_dir: Path, tag_definitions: duckdb.DuckDBPyRelation,
                 tag_values: duckdb.DuckDBPyRelation, category_seeds: list[duckdb.DuckDBPyRelation],
                 con: duckdb.DuckDBPyConnection) -> tuple[SegmentFile, Vocabulary]:
    categories = configured_categories(con, [relation_sql(r) for r in category_seeds])
    vocabulary = Vocabulary.from_warehouse(con, relation_sql(tag_definitions),
                                           relation_sql(tag_values), categories)
    return load_segments(segments_file(project_dir), vocabulary,
                         required=segments_file_configured()), vocabulary


def definitions_table(con: duckdb.DuckDBPyConnection, project_dir: Path,
                      tag_definitions: duckdb.DuckDBPyRelation,
                      tag_values: duckdb.DuckDBPyRelation,
                      category_seeds: list[duckdb.DuckDBPyRelation]) -> pa.Table:
    """One row per segment of the file, in file order (model segment_definitions)."""
    file, vocabulary = checked_file(project_dir, tag_definitions, tag_values, category_seeds,
                                    con)
    order = {s.code: n for n, s in enumerate(file.evaluation_order(), start=1)}
    conditions, _ = segment_conditions(file, vocabulary, MEMBER_TAGS, inline=True)
    condition = dict(conditions)
    rows = []
    for segment in file.segments:
        names = segment.names_read
        rows.append({
            "segment_code": segment.code,
            "label_zh": segment.label_zh,
            "label_en": segment.label_en,
            "owner": segment.owner,
            "description": segment.description,
            "where_expression": segment.where,
            "priority_list": segment.priority_list,
            "priority_rank": segment.priority_rank,
            "holdout_percent": segment.holdout_percent,
            "holdout_salt": segment.holdout_salt,
            "tags_read": " ".join(sorted(n for n in names if n in vocabulary.tags)),
            "metrics_read": " ".join(sorted(n for n in names if n in vocabulary.metrics)),
            "segments_read": " ".join(segment.segments_read),
            "evaluation_order": order[segment.code],
            "definition_hash": segment.definition_hash,
            "member_condition": condition[segment.code],
            "source_file": str(file.path.name),
            "source_line": segment.line,
        })
    return pa.Table.from_pylist(rows, schema=DEFINITION_SCHEMA)
