-- Every row rejected in staging, with its reason and where it came from. Nothing is dropped
-- silently: a row is either published, here, or counted as a superseded duplicate
-- (see reconciliation).
{% set tables = landing_tables() %}
with

{% for t in tables %}
rejected_{{ loop.index }} as (
    select
        '{{ t.table }}' as source_table,
        cast({{ t.key }} as varchar) as record_key,
        rejection_reason,
        _source_file as source_file,
        _source_row_number as source_row_number,
        to_json(staged) as record
    -- the row as delivered and cleaned, without the run bookkeeping (when it was loaded and judged)
    from (
        select {{ star_except(ref(t.staging), ['_loaded_at', '_evaluated_at', '_as_of_date']) }} from {{ ref(t.staging) }}
        where rejection_reason is not null
    ) as staged
),
{% endfor %}

final as (
    {% for t in tables %}
    select *, {{ as_of_date() }} as as_of_date from rejected_{{ loop.index }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

-- A stable order so the same inputs give the same table, row for row.
select * from final
order by source_table, source_file, source_row_number
