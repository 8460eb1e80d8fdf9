-- One row per (order_id, line_no); a re-delivered line replaces the old one (order items carry
-- no timestamp, so the later delivery wins), with the reason it is rejected (null = kept).
-- A view of the current versions: the verdict is judged and stored in base_orders__order_items
-- (macros/stored_verdicts.sql), where the rejection rules are.
select {{ star_except(ref('base_orders__order_items'), ['_is_current']) }} from {{ ref('base_orders__order_items') }} where _is_current
