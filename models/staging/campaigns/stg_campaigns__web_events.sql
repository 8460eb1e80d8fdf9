-- One row per event_id, with the reason it is rejected (null = kept). The category text is
-- mapped to a code in fct_web_events (a mapping change then applies to every event without
-- re-judging staging). A view of the current versions: the verdict is judged and stored in
-- base_campaigns__web_events (macros/stored_verdicts.sql), where the rejection rules are.
{{ config(materialized='view') }}
select {{ star_except(ref('base_campaigns__web_events'), ['_is_current']) }} from {{ ref('base_campaigns__web_events') }} where _is_current
