-- One row per contact_id (latest updated_at wins), with the reason it is rejected (null = kept).
-- A view of the current versions: the verdict is judged and stored in base_crm__contacts
-- (macros/stored_verdicts.sql), where the rejection rules are.
select {{ star_except(ref('base_crm__contacts'), ['_is_current']) }} from {{ ref('base_crm__contacts') }} where _is_current
