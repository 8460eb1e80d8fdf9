-- One row per order_id (latest _ingested_at wins), with the reason it is rejected (null = kept).
-- A view of the current versions: the verdict is judged and stored in base_orders__orders
-- (macros/stored_verdicts.sql), where the rejection rules are.
select {{ star_except(ref('base_orders__orders'), ['_is_current']) }} from {{ ref('base_orders__orders') }} where _is_current
