with

source as (
    select * from {{ source('orders', 'promotions') }}
),

cleaned as (
    select
        {{ clean_key('promotion_id') }} as promotion_id,
        trim(promotion_name) as promotion_name,
        {{ normalize_code('promotion_type') }} as promotion_type,
        start_date,
        end_date,
        _source_file,
        _source_row_number,
        _delivered_at,
    from source
),

latest as (
    {{ latest_version('cleaned', 'promotion_id') }}
),

final as (
    select
        *,
        case
            when promotion_id is null then 'missing promotion_id'
            when end_date < start_date then 'end_date before start_date'
        end as rejection_reason,
    from latest
)

select * from final
