-- Per raw table: rows in = rows kept + rows rejected + duplicates superseded. Each term is
-- counted from a different place (Parquet footers, staging, quarantine, the base model's
-- superseded versions), and rows_published counts the published fact/dimension, so a row lost
-- anywhere shows up as an imbalance.
{% set tables = landing_tables() %}
with

deliveries as (
    select
        source_table,
        sum(rows_delivered) as rows_in
    from {{ ref('landing_deliveries') }}
    group by source_table
),

quarantine as (
    select
        source_table,
        count(*) as rows_rejected
    from {{ ref('quarantine_rows') }}
    group by source_table
),

{% for t in tables %}
staged_{{ loop.index }} as (
    select
        '{{ t.table }}' as source_table,
        count(*) filter (where rejection_reason is null) as rows_kept,
        (select count(*) from {{ ref(t.base) }} as base where not base._is_current) as duplicates_superseded,
        {% if t.published %}
        (select count(*) from {{ ref(t.published) }}) as rows_published
        {% else %}
        count(*) filter (where rejection_reason is null) as rows_published
        {% endif %}
    from {{ ref(t.staging) }}
),
{% endfor %}

staged as (
    {% for t in tables %}
    select * from staged_{{ loop.index }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select
        staged.source_table,
        coalesce(deliveries.rows_in, 0) as rows_in,
        staged.rows_kept,
        coalesce(quarantine.rows_rejected, 0) as rows_rejected,
        staged.duplicates_superseded,
        staged.rows_published,
        (
            coalesce(deliveries.rows_in, 0)
            = staged.rows_kept + coalesce(quarantine.rows_rejected, 0) + staged.duplicates_superseded
            and staged.rows_published = staged.rows_kept
        ) as is_balanced,
        {{ as_of_date() }} as as_of_date
    from staged
    left join deliveries on staged.source_table = deliveries.source_table
    left join quarantine on staged.source_table = quarantine.source_table
)

select * from final
order by source_table
