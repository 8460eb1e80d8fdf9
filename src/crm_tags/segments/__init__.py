"""Segments: customer groups defined over the tags (segments/segments.yml), validated against
the catalog, compiled to SQL with bound values, built inside the dbt build (models/marts/
segments/), previewed and exported from the published warehouse (`crm-tags segments`).
See docs/segments.md.
"""

from crm_tags.segments.definitions import (
    DefinitionProblem,
    PriorityList,
    Segment,
    SegmentDefinitionError,
    SegmentFile,
    holdout_bucket,
    load_segments,
    segments_file,
)
from crm_tags.segments.vocabulary import PROFILE_METRICS, Vocabulary

__all__ = [
    "PROFILE_METRICS",
    "DefinitionProblem",
    "PriorityList",
    "Segment",
    "SegmentDefinitionError",
    "SegmentFile",
    "Vocabulary",
    "holdout_bucket",
    "load_segments",
    "segments_file",
]
