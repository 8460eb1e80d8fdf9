-- A customer holds at most one value of a single-valued tag; multi-valued tags hold each value once.
-- One grouping: by (customer, tag) for single-valued tags, by (customer, tag, value) for the others.
select customer_tags.customer_id, customer_tags.tag_code, count(*) as values_held
from {{ ref('customer_tags') }} as customer_tags
inner join {{ ref('tag_definitions') }} as definitions
    on customer_tags.tag_code = definitions.tag_code
group by
    customer_tags.customer_id,
    customer_tags.tag_code,
    case when definitions.is_multi_valued then customer_tags.tag_value end
having count(*) > 1
