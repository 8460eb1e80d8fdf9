-- One row per campaign_id (the latest delivery wins), with the reason it is rejected (null = kept).
-- A view: the verdict needs only the row, so it is judged at each read.
with

latest as (
    select {{ star_except(ref('base_campaigns__campaigns'), ['_is_current']) }} from {{ ref('base_campaigns__campaigns') }} where _is_current
),

final as (
    select
        *,
        case
            when campaign_id is null then 'missing campaign_id'
            when channel is null or channel not in ('email', 'sms', 'wechat', 'ads') then 'unknown channel'
        end as rejection_reason
    from latest
)

select *, {{ evaluation_stamp() }} from final
