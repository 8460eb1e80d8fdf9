-- Every version of campaigns/attributed_orders ever loaded; _is_current marks the one that wins for its key
-- (macros/versions.sql). Incremental: a run loads only new delivery files.
{{ config(unique_key=['order_id', 'campaign_id']) }}

with

source as (
    select * from {{ source('campaigns', 'attributed_orders') }}
    where {{ not_yet_loaded('campaigns/attributed_orders') }}
),

cleaned as (
    select
        {{ clean_key('order_id') }} as order_id,
        {{ clean_key('campaign_id') }} as campaign_id,
        {{ clean_key('account_id') }} as account_id,
        attributed_revenue,
        conversion_ts,
        _source_file,
        _source_row_number,
        _delivered_at
    from source
),

{{ rank_versions('cleaned', ['order_id', 'campaign_id'], 'conversion_ts desc nulls last') }}

select * from ranked
