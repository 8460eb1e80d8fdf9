with

source as (
    select * from {{ source('campaigns', 'campaigns') }}
),

cleaned as (
    select
        {{ clean_key('campaign_id') }} as campaign_id,
        trim(campaign_name) as campaign_name,
        {{ normalize_code('channel') }} as channel,
        {{ clean_key('promotion_id') }} as promotion_id,
        start_date,
        end_date,
        _source_file,
        _source_row_number,
        _delivered_at,
    from source
),

latest as (
    {{ latest_version('cleaned', 'campaign_id') }}
),

final as (
    select
        *,
        case
            when campaign_id is null then 'missing campaign_id'
            when channel is null or channel not in ('email', 'sms', 'wechat', 'ads') then 'unknown channel'
        end as rejection_reason,
    from latest
)

select * from final
