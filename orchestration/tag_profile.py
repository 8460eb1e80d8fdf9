"""What a tag table holds, as materialisation metadata: rows, run date, share per value.

Read from a built warehouse file (the candidate once dbt has finished, or the published file
the warehouse-state sensor reads): the rows of `tags.tag_<code>`, its `as_of_date`, and for
each value the number and share of customers (contacts for a contact-level tag) holding it.
The population is the non-deleted customers of `core.dim_customers` (every contact of
`core.dim_contacts`), so the shares are those of `marts.customer_tags`. The values are the
catalog's, in its order; a category tag's are first the categories present in the product data
(`core.dim_product_categories`, with their labels), as in `reference.tag_value_definitions`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import duckdb
from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from crm_tags.catalog import CatalogTag, DbtGraph

VALUE_SCHEMA = TableSchema(
    columns=[
        TableColumn("value", "string"),
        TableColumn("label_zh", "string"),
        TableColumn("label_en", "string"),
        TableColumn("holders", "int", description="customers (contacts) holding the value"),
        TableColumn("share", "float", description="holders / population"),
    ]
)


def quoted_relation(node: Mapping[str, Any]) -> str:
    """"schema"."table" of a dbt node in the warehouse."""
    return f'"{node["schema"]}"."{node.get("alias") or node["name"]}"'


PROFILE_RELATIONS = ("dim_customers", "dim_contacts", "dim_product_categories")


def population_relations(graph: DbtGraph) -> dict[str, str]:
    """The relations tag_profile reads besides the tag table: the customers and contacts it
    counts shares of, and the product categories (the values of a category tag)."""
    return {n: quoted_relation(graph.nodes[n]) for n in PROFILE_RELATIONS if n in graph.nodes}


def tag_values(
    con: duckdb.DuckDBPyConnection, tag: CatalogTag, relations: Mapping[str, str]
) -> list[tuple[str, str, str]]:
    """(code, label_zh, label_en) of every value the tag may take, in display order."""
    listed = [tuple(v) for v in tag.values]
    if not tag.values_are_product_categories:
        return listed  # type: ignore[return-value]
    codes = {v[0] for v in listed}
    categories = con.execute(
        f"select category_code, label_zh, label_en from {relations['dim_product_categories']} "
        "order by sort_order, category_code"
    ).fetchall()
    return [c for c in categories if c[0] not in codes] + listed  # type: ignore[return-value]


def population_sql(tag: CatalogTag, relations: Mapping[str, str]) -> tuple[str, str]:
    """(entity id column, query of the population's ids) for the tag's level."""
    if tag.level == "contact":
        return "contact_id", f"select contact_id as entity_id from {relations['dim_contacts']}"
    return (
        "customer_id",
        f"select customer_id as entity_id from {relations['dim_customers']} where not is_deleted",
    )


def tag_profile(
    con: duckdb.DuckDBPyConnection,
    tag: CatalogTag,
    relation: str,
    relations: Mapping[str, str],
) -> dict[str, Any]:
    """Metadata of one tag table: rows, as_of_date, population, holders and share per value.

    relations: `dim_customers` / `dim_contacts` -> their qualified names in this warehouse.
    """
    rows, as_of = con.execute(f"select count(*), max(as_of_date) from {relation}").fetchone()
    entity, population = population_sql(tag, relations)
    total = con.execute(f"select count(*) from ({population})").fetchone()[0]
    held = dict(
        con.execute(
            f"""
            select tag_value, count(distinct {entity})
            from {relation}
            where {entity} in (select entity_id from ({population}))
            group by tag_value
            """
        ).fetchall()
    )
    tagged = con.execute(
        f"select count(distinct {entity}) from {relation} "
        f"where {entity} in (select entity_id from ({population}))"
    ).fetchone()[0]
    unit = "contacts" if tag.level == "contact" else "customers"
    labels = {code: (zh, en) for code, zh, en in tag_values(con, tag, relations)}
    codes = list(labels) + sorted(set(held) - set(labels))
    shares = {
        code: round(held.get(code, 0) / total, 4) if total else 0.0 for code in codes
    }
    records = [
        TableRecord(
            {
                "value": code,
                "label_zh": labels[code][0] if code in labels else "(not in the catalog)",
                "label_en": labels[code][1] if code in labels else "(not in the catalog)",
                "holders": int(held.get(code, 0)),
                "share": shares[code],
            }
        )
        for code in codes
    ]
    metadata: dict[str, Any] = {
        "dagster/row_count": MetadataValue.int(int(rows)),
        "as_of_date": as_of.isoformat() if isinstance(as_of, dt.date) else "none (empty table)",
        unit: MetadataValue.int(int(total)),
        f"{unit}_tagged": MetadataValue.int(int(tagged)),
        f"share_of_{unit}_tagged": MetadataValue.float(round(tagged / total, 4) if total else 0.0),
        "value_shares": MetadataValue.table(records, schema=VALUE_SCHEMA),
    }
    # one number per value as well: the UI plots each over the materialisations
    metadata.update({f"share {code}": MetadataValue.float(share) for code, share in shares.items()})
    return metadata
