-- Rows per delivery file and raw table, as landed (before any cleaning): the "rows in" side
-- of the reconciliation. Counted from the Parquet footers (raw_landing.delivery_files), so it
-- costs nothing per row and is independent of how the base models read the files.
with

deliveries as (
    select
        source_table,
        source_file,
        rows_delivered,
        delivered_at,
        file_bytes
    from {{ source('landing', 'delivery_files') }}
),

final as (
    select * from deliveries
)

select * from final
order by source_table, source_file
