-- Every version of campaigns/campaigns ever loaded; _is_current marks the one that wins for its key
-- (macros/versions.sql). Incremental: a run loads only new delivery files.
{{ config(unique_key=['campaign_id']) }}

with

source as (
    select * from {{ source('campaigns', 'campaigns') }}
    where {{ not_yet_loaded('campaigns/campaigns') }}
),

cleaned as (
    select
        {{ clean_key('campaign_id') }} as campaign_id,
        {{ trim_spaces('campaign_name') }} as campaign_name,
        {{ normalize_code('channel') }} as channel,
        {{ clean_key('promotion_id') }} as promotion_id,
        start_date,
        end_date,
        _source_file,
        _source_row_number,
        _delivered_at
    from source
),

{{ rank_versions('cleaned', ['campaign_id']) }}

select * from ranked
