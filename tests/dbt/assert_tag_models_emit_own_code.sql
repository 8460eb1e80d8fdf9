-- Each tag model emits rows of its own tag_code only (a copy-paste slip would mislabel a tag).
{% for tag in account_tags() + contact_tags() if tag.model %}
select '{{ tag.model }}' as model_name, tag_code from {{ ref(tag.model) }} where tag_code <> '{{ tag.code }}'
{% if not loop.last %}union all{% endif %}
{% endfor %}
