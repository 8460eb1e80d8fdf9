"""intermediate.segment_matches: (segment_code, customer_id) of every segment's members, priority
lists applied (a customer is in the first segment of a list it matches only).

Each segment's `where` is compiled to SQL by crm_tags.segments.compile with every value bound
as a parameter, and all segments run as one statement in this session: one projection per
segment over marts.customer_profile (marts.customer_tags for the multi-valued tags), then one
UNPIVOT. Holdout flags and the run date are added by segment_members (SQL).
"""

from pathlib import Path

from crm_tags.segments.models import matches


def model(dbt, session):
    dbt.config(materialized="table")
    dbt.ref("segment_definitions")  # checked there first: a bad file fails that model, not this
    return matches(
        session,
        Path.cwd(),
        profile=dbt.ref("customer_profile"),
        tags=dbt.ref("customer_tags"),
        tag_definitions=dbt.ref("tag_definitions"),
        tag_values=dbt.ref("tag_value_definitions"),
        category_seeds=[dbt.ref("category_mapping"), dbt.ref("category_labels")],
    )
