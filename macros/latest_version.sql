{#
    "Latest wins" dedupe used by every staging model. Keeps one row per business key: the newest
    by `order_by`, then the latest delivery (file mtime), then the later file and row, so the
    choice is deterministic. Rows with a null key cannot be deduped and are kept one by one
    (staging rejects them). `_versions_received` counts the raw rows behind each kept row, so
    the reconciliation can show how many were superseded.
#}
{% macro latest_version(relation, key_expression, order_by=none) -%}
    select
        *,
        count(*) over (partition by _dedupe_key) as _versions_received,
    from (
        select
            *,
            coalesce(
                cast({{ key_expression }} as varchar),
                '#unkeyed:' || _source_file || ':' || cast(_source_row_number as varchar)
            ) as _dedupe_key,
        from {{ relation }}
    )
    qualify row_number() over (
        partition by _dedupe_key
        order by {% if order_by %}{{ order_by }}, {% endif %}_delivered_at desc nulls last, _source_file desc, _source_row_number desc
    ) = 1
{%- endmacro %}
