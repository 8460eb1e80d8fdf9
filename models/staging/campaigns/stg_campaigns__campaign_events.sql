-- One row per event_id. An event needs a kept campaign, a known type and a date not after the run date.
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key=['event_id'], on_schema_change='fail') }}
with

campaigns as (
    select campaign_id from {{ ref('stg_campaigns__campaigns') }} where rejection_reason is null
),

latest as (
    {{ current_versions_to_evaluate(
        'base_campaigns__campaign_events', ['event_id'],
        parents=[{'model': 'base_campaigns__campaigns', 'key': 'campaign_id', 'column': 'campaign_id', 'changed_at': '_loaded_at'}],
        dated=['event_ts'],
    ) }}
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
