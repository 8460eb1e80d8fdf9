{# Free-text code columns: trim, lower-case, collapse inner whitespace; blank -> null. #}
{% macro normalize_code(expression) -%}
    nullif(lower(regexp_replace(trim({{ expression }}), '\s+', ' ', 'g')), '')
{%- endmacro %}

{# Identity key for emails: trimmed and lower-cased (raw-sources.md, Identity). #}
{% macro normalize_email(expression) -%}
    nullif(lower(trim({{ expression }})), '')
{%- endmacro %}

{# Keys: trimmed, blank -> null. #}
{% macro clean_key(expression) -%}
    nullif(trim({{ expression }}), '')
{%- endmacro %}
