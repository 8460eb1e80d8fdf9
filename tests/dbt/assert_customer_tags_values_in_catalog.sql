-- Values outside the catalog's codes never appear in marts.customer_tags.
select customer_tags.*
from {{ ref('customer_tags') }} as customer_tags
left join {{ ref('tag_value_definitions') }} as value_definitions
    on customer_tags.tag_code = value_definitions.tag_code
    and customer_tags.tag_value = value_definitions.tag_value
where value_definitions.tag_value is null
