-- One row per event_id. An event needs a kept campaign, a known type and a date not after the run date.
with

source as (
    select * from {{ source('campaigns', 'campaign_events') }}
),

campaigns as (
    select campaign_id from {{ ref('stg_campaigns__campaigns') }} where rejection_reason is null
),

cleaned as (
    select
        {{ clean_key('event_id') }} as event_id,
        {{ clean_key('campaign_id') }} as campaign_id,
        {{ normalize_email('recipient_email') }} as recipient_email,
        {{ normalize_code('event_type') }} as event_type,
        event_ts,
        _source_file,
        _source_row_number,
        _delivered_at,
    from source
),

latest as (
    {{ latest_version('cleaned', 'event_id') }}
),

final as (
    select
        latest.*,
        case
            when latest.event_id is null then 'missing event_id'
            when latest.campaign_id is null then 'missing campaign_id'
            when campaigns.campaign_id is null then 'unknown campaign_id'
            when latest.event_type is null
                or latest.event_type not in ('sent', 'delivered', 'opened', 'clicked', 'unsubscribed')
                then 'unknown event_type'
            when latest.event_ts is null then 'missing event_ts'
            when {{ days_since('latest.event_ts') }} < 0 then 'event_ts after the run date'
        end as rejection_reason,
    from latest
    left join campaigns on latest.campaign_id = campaigns.campaign_id
)

select * from final
