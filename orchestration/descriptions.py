"""What the Dagster UI shows about an asset or a check, in Markdown.

The UI renders descriptions as Markdown with raw HTML allowed, and shows their first line as
plain text in the asset lists: text from the catalog or from dbt is escaped only where Markdown
would swallow it (`<name>` would be an HTML tag; `|` ends a table cell), so both views read as
written, and a description starts with a plain sentence. A tag asset's description is its
catalog entry (`tag_description`); other dbt assets show their dbt description or a line naming
the relation (the raw SQL is asset metadata, never the description's first lines); dbt test
checks get the test's description or a sentence built from its kind and column.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from crm_tags.catalog import CatalogTag

# `<` opens an HTML tag (which the UI would swallow) when a letter, `/`, `!` or `?` follows it
_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")


def md_text(text: str) -> str:
    """Plain text for a Markdown paragraph: `<name>` stays visible; `<= 30` needs nothing."""
    return _TAG_OPEN.sub("&lt;", text).replace("\n", " ")


def md_cell(text: str) -> str:
    """Plain text for a Markdown table cell."""
    return md_text(text).replace("|", "\\|")


def md_code(text: str) -> str:
    """An inline code span (shown as written, `<` included)."""
    fence = "``" if "`" in text else "`"
    return f"{fence}{text}{fence}"


def tag_description(tag: CatalogTag, relation: str) -> str:
    """The tag's catalog entry: what it means, how it is computed, who owns it, its values."""
    lines = [
        # plain: the asset lists show this line as text
        f"{md_text(tag.label_en)} · {md_text(tag.label_zh)} ({tag.code}): {md_text(tag.definition)}.",
        "",
        f"- **Rule:** {md_text(tag.rule)}",
        f"- **Authoritative source:** {md_text(tag.authoritative_source)}",
        f"- **Source tables:** {', '.join(md_code(t) for t in tag.source_tables) or 'none'}",
        f"- **Refresh cadence:** {md_text(tag.cadence)}",
        f"- **Owner:** {md_text(tag.owner)}",
        f"- **Dimension:** {md_text(tag.dimension)}",
        f"- **Level:** {md_text(tag.level)}",
        f"- **Multi-valued:** {'yes' if tag.is_multi_valued else 'no'}",
        "",
        "**Values**",
        "",
    ]
    if tag.values_are_product_categories:
        lines += [
            (
                "The values are the product categories present in the product data "
                "(`core.dim_product_categories`)" + (", then:" if tag.values else ".")
            ),
            "",
        ]
    if tag.values:
        lines += ["| value | 中文 | English |", "|---|---|---|"]
        lines += [
            f"| {md_code(v.code)} | {md_cell(v.label_zh)} | {md_cell(v.label_en)} |"
            for v in tag.values
        ]
    lines += [
        "",
        (
            f"Computed by the dbt model {md_code(relation)}; each materialisation records its "
            "rows and the share of customers holding each value."
        ),
    ]
    return "\n".join(lines)


def dbt_node_description(props: Mapping[str, Any], relation: str) -> str:
    """The dbt description, or a line naming what the node is."""
    text = (props.get("description") or "").strip()
    kind = props["resource_type"]
    if text:
        return f"{md_text(text)}\n\ndbt {kind} {md_code(relation)}"
    return f"dbt {kind} {md_code(relation)}"


def raw_sql_markdown(props: Mapping[str, Any]) -> str | None:
    code = (props.get("raw_code") or props.get("raw_sql") or "").strip()
    if not code:
        return None
    fence = "````" if "```" in code else "```"
    return f"{fence}sql\n{code}\n{fence}"


def _ref_name(expression: Any) -> str:
    """`ref('customer_profile')` -> customer_profile."""
    match = re.search(r"ref\(\s*['\"]([^'\"]+)['\"]", str(expression))
    return match.group(1) if match else str(expression)


def _leading_comment(code: str) -> str:
    """The `--` comment lines a singular test starts with."""
    lines = []
    for line in code.strip().splitlines():
        stripped = line.strip()
        if not stripped.startswith("--"):
            break
        lines.append(stripped.removeprefix("--").strip())
    return " ".join(lines)


def dbt_test_description(test: Mapping[str, Any]) -> str:
    """The test's own description, else a sentence from its kind and column (generic tests)
    or its leading comment (singular tests)."""
    own = (test.get("description") or "").strip()
    severity = (test.get("config", {}).get("severity") or "error").lower()
    suffix = "" if severity == "error" else f" (severity {severity}: reported, not blocking)"
    if own:
        return md_text(own) + suffix
    metadata = test.get("test_metadata") or {}
    kind = metadata.get("name")
    kwargs = metadata.get("kwargs") or {}
    column = test.get("column_name") or kwargs.get("column_name")
    col = md_code(column) if column else "the row"
    if kind == "not_null":
        sentence = f"{col} is never null."
    elif kind == "unique":
        sentence = f"{col} is unique: no value appears twice."
    elif kind == "accepted_values":
        values = [str(v) for v in kwargs.get("values") or []]
        shown = ", ".join(md_code(v) for v in values[:12])
        more = f" and {len(values) - 12} more" if len(values) > 12 else ""
        sentence = f"{col} only holds the accepted values {shown}{more}."
    elif kind == "relationships":
        target = f"{_ref_name(kwargs.get('to'))}.{kwargs.get('field')}"
        sentence = f"Every {col} exists in {md_code(target)}."
    elif kind == "unique_combination":
        columns = ", ".join(md_code(str(c)) for c in kwargs.get("columns") or [])
        sentence = f"Each combination of {columns} appears at most once."
    elif kind:
        sentence = f"dbt test {md_code(kind)} on {col}."
    else:
        comment = _leading_comment(test.get("raw_code") or "")
        sentence = md_text(comment) if comment else f"dbt test {md_code(test['name'])}."
    return sentence + suffix
