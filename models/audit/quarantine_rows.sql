-- Every row rejected in staging, with its reason and where it came from. Nothing is dropped
-- silently: a row is either published, here, or counted as a superseded duplicate
-- (see reconciliation).
-- What a steward needs to fix a delivery (table, file, row number, reason, key) and no more:
-- not the row itself, which holds names, emails, phones and birth dates; the full row stays
-- in the landing zone, found by its file and row number (docs/privacy.md).
{% set tables = landing_tables() %}
with

{% for t in tables %}
rejected_{{ loop.index }} as (
    select
        '{{ t.table }}' as source_table,
        cast({{ t.key }} as {{ dbt.type_string() }}) as record_key,
        rejection_reason,
        _source_file as source_file,
        _source_row_number as source_row_number
    from {{ ref(t.staging) }}
    where rejection_reason is not null
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
