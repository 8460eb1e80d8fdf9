-- A customer holds at most one value of a single-valued tag; multi-valued tags hold each value once.
-- One key per row: (customer, tag) for single-valued tags, (customer, tag, value) for the others.
-- Grouped first by a 64-bit hash of the key (repeated_key_hashes, macros/test_unique_combination.sql).
with

held as (
    select
        customer_tags.customer_id,
        customer_tags.tag_code,
        case when definitions.is_multi_valued then customer_tags.tag_value end as multi_value
    from {{ ref('customer_tags') }} as customer_tags
    inner join {{ ref('tag_definitions') }} as definitions
        on customer_tags.tag_code = definitions.tag_code
),

repeated as (
    {{ repeated_key_hashes('held', ['customer_id', 'tag_code', 'multi_value']) }}
)

select
    held.customer_id,
    held.tag_code,
    count(*) as values_held
from held
where {{ key_hash(['held.customer_id', 'held.tag_code', 'held.multi_value']) }} in (select repeated.key_hash from repeated)
group by held.customer_id, held.tag_code, held.multi_value
having count(*) > 1
