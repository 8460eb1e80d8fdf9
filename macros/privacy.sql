{# A text literal (or a typed null) for models generated from the graph (audit.privacy_columns). #}
{% macro _privacy_literal(value) -%}
    {%- if value is none -%}
        cast(null as {{ dbt.type_string() }})
    {%- else -%}
        cast('{{ value | string | replace("'", "''") }}' as {{ dbt.type_string() }})
    {%- endif -%}
{%- endmacro %}


{#
    The personal-data classification of the graph: one dict per column with column meta
    `personal`, or named by its model's meta `erasure_key` (kind customer) / `erasure_keys`
    ({column: customer|contact|email}). Read by models/audit/privacy_columns.sql.
#}
{% macro privacy_classification() %}
{%- set rows = [] -%}
{%- if execute -%}
    {%- for node in graph.nodes.values() | list + graph.sources.values() | list -%}
        {%- if node.resource_type in ('model', 'seed', 'snapshot', 'source') -%}
            {%- set node_meta = (node.config or {}).get('meta') or node.get('meta') or {} -%}
            {%- set keys = {} -%}
            {%- if node_meta.get('erasure_key') -%}
                {%- do keys.update({node_meta['erasure_key']: 'customer'}) -%}
            {%- endif -%}
            {%- do keys.update(node_meta.get('erasure_keys') or {}) -%}
            {%- set relation = node.alias if node.resource_type != 'source' else node.identifier -%}
            {#- the published schema: a candidate build's suffix is not part of it -#}
            {%- set schema = published_schema_name(node.schema) -%}
            {%- for column in node.columns.values() -%}
                {%- set column_meta = column.get('meta') or (column.get('config') or {}).get('meta') or {} -%}
                {%- set personal = column_meta.get('personal') -%}
                {%- if personal or keys.get(column.name) -%}
                    {%- do rows.append({
                        'schema': schema, 'table': relation, 'column': column.name,
                        'personal': personal, 'erasure': keys.get(column.name),
                        'resource': node.resource_type, 'node': node.unique_id
                    }) -%}
                {%- endif -%}
            {%- endfor -%}
            {%- for column_name, kind in keys.items() if column_name not in node.columns -%}
                {%- do rows.append({
                    'schema': schema, 'table': relation, 'column': column_name,
                    'personal': none, 'erasure': kind, 'resource': node.resource_type,
                    'node': node.unique_id
                }) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif -%}
    {{ return(rows) }}
{% endmacro %}
