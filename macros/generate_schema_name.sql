{#
    Custom schemas are used as-is (marts, tags, staging ...), so BI tools read marts.customer_tags.

    A write-audit-publish build on PostgreSQL (src/crm_tags/pg_publish.py) sets
    CRM_SCHEMA_SUFFIX (`__candidate`): every custom schema, and the host-run Python models'
    (models/engines/python_on_host), is then built as `<schema>__candidate`, gated there, and
    swapped in by renaming. The target's own schema (none of the project's nodes lands there)
    is never suffixed: it is no schema of the build's to swap.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{{ env_var('CRM_SCHEMA_SUFFIX', '') }}{%- endif -%}
{%- endmacro %}


{# The name a schema has once published: without the candidate suffix (see above). #}
{% macro published_schema_name(schema) -%}
    {%- set suffix = env_var('CRM_SCHEMA_SUFFIX', '') -%}
    {%- if suffix and schema.endswith(suffix) -%}{{ schema[:schema | length - suffix | length] }}{%- else -%}{{ schema }}{%- endif -%}
{%- endmacro %}
