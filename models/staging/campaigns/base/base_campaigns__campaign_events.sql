-- Every version of campaigns/campaign_events ever loaded; _is_current marks the one that wins for its key
-- (macros/versions.sql), and the current version carries its verdict (macros/stored_verdicts.sql).
-- Incremental: a run loads only new delivery files and re-judges what can have changed.
-- An event needs a kept campaign, a known type and a date not after the run date. Stored, not
-- judged at each read: the 17M events are read by the quarantine, the reconciliation, the
-- fact view and the gate, and each read paid for the check again (docs/benchmark.md).
{{ config(unique_key=['event_id']) }}

with

source as (
    select * from {{ source('campaigns', 'campaign_events') }}
    where {{ not_yet_loaded('campaigns/campaign_events') }}
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
        _delivered_at
    from source
),

campaigns as (
    select campaign_id from {{ ref('stg_campaigns__campaigns') }} where rejection_reason is null
),

{{ rank_versions('cleaned', ['event_id'], reevaluate={
    'parents': [
        {'model': 'base_campaigns__campaigns', 'key': 'campaign_id', 'column': 'campaign_id',
         'changed_at': '_loaded_at'},
    ],
    'dated': ['event_ts'],
}) }},

final as (
    select
        ranked.*,
        case
            when not ranked._is_current then null
            when ranked.event_id is null then 'missing event_id'
            when ranked.campaign_id is null then 'missing campaign_id'
            when campaigns.campaign_id is null then 'unknown campaign_id'
            when ranked.event_type is null
                or ranked.event_type not in ('sent', 'delivered', 'opened', 'clicked', 'unsubscribed')
                then 'unknown event_type'
            when ranked.event_ts is null then 'missing event_ts'
            when {{ days_since('ranked.event_ts') }} < 0 then 'event_ts after the run date'
        end as rejection_reason
    from ranked
    left join campaigns on ranked.campaign_id = campaigns.campaign_id
)

select *, {{ evaluation_stamp() }} from final
