-- One row per event_id. The category text is mapped to a code in fct_web_events (a mapping
-- change then applies to every event without re-evaluating staging).
-- A view: no parent, so judging every event at each read costs less than writing a second copy.
{{ config(materialized='view') }}
with

latest as (
    select * exclude (_is_current) from {{ ref('base_campaigns__web_events') }} where _is_current
),

final as (
    select
        latest.*,
        case
            when latest.event_id is null then 'missing event_id'
            when latest.event_type is null
                or latest.event_type not in ('page_view', 'add_to_cart', 'search')
                then 'unknown event_type'
            when latest.event_ts is null then 'missing event_ts'
            when {{ days_since('latest.event_ts') }} < 0 then 'event_ts after the run date'
        end as rejection_reason,
    from latest
)

select *, {{ evaluation_stamp() }} from final
