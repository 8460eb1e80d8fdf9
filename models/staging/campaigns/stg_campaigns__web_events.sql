-- One row per event_id. The category text is mapped to a code in fct_web_events (a mapping
-- change then applies to every event without re-evaluating staging).
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key=['event_id'], on_schema_change='fail') }}
with

latest as (
    {{ current_versions_to_evaluate(
        'base_campaigns__web_events', ['event_id'],
        dated=['event_ts'],
    ) }}
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
