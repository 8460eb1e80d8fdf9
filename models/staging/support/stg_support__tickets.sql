-- One row per ticket_id (the latest delivery wins), with the reason it is rejected (null = kept).
-- A view of the current versions: the verdict is judged and stored in base_support__tickets
-- (macros/stored_verdicts.sql), where the rejection rules are.
select {{ star_except(ref('base_support__tickets'), ['_is_current']) }} from {{ ref('base_support__tickets') }} where _is_current
