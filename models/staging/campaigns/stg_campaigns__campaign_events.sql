-- One row per event_id. An event needs a kept campaign, a known type and a date not after the run date.
-- A view, unlike the other big staging models: its only parent is the small campaigns table, so
-- judging every event at each read costs less than writing a second copy of 17M events at 1M
-- customers (docs/benchmark.md).
{{ config(materialized='view') }}
with

campaigns as (
    select campaign_id from {{ ref('stg_campaigns__campaigns') }} where rejection_reason is null
),

latest as (
    select * exclude (_is_current) from {{ ref('base_campaigns__campaign_events') }} where _is_current
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

select *, {{ evaluation_stamp() }} from final
