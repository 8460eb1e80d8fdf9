-- One row per event_id, with the reason it is rejected (null = kept). A view of the current
-- versions: the verdict is judged and stored in base_campaigns__campaign_events
-- (macros/stored_verdicts.sql), where the rejection rules are.
{{ config(materialized='view') }}
select {{ star_except(ref('base_campaigns__campaign_events'), ['_is_current']) }} from {{ ref('base_campaigns__campaign_events') }} where _is_current
