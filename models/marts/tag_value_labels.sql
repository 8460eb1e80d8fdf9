-- marts.tag_value_labels: the Chinese and English display label of every tag value code.
select
    tag_code,
    tag_value,
    label_zh,
    label_en,
    sort_order
from {{ ref('tag_value_definitions') }}
order by tag_code, sort_order
