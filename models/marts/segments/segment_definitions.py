"""intermediate.segment_definitions: one row per segment of the segments file
(segments/segments.yml, or $CRM_SEGMENTS_FILE), checked against this build's tag catalog.

A mistake in the file (an unknown tag, a value outside the catalog, a syntax error, a cycle)
fails this model with a message naming the segment, the line and column, and what was expected:
nothing downstream is built and nothing is published. The logic lives in
crm_tags.segments.models (tested there); dbt runs models from the project directory, whose
segments/ folder holds the file ($CRM_PROJECT_DIR when crm-tags runs dbt elsewhere).
"""

import os
from pathlib import Path

from crm_tags.segments.models import definitions_table


def model(dbt, session):
    dbt.config(materialized="table")
    return definitions_table(
        session,
        Path(os.environ.get("CRM_PROJECT_DIR") or Path.cwd()),
        tag_definitions=dbt.ref("tag_definitions"),
        tag_values=dbt.ref("tag_value_definitions"),
        category_seeds=[dbt.ref("category_mapping"), dbt.ref("category_labels")],
    )
