-- The personal-data classification of the project, as the model and source YAML declare it
-- (docs/privacy.md): one row per column that holds personal data (column meta `personal`) or
-- identifies a customer for erasure (model meta `erasure_key` / `erasure_keys`). The publish
-- step reads it from the file it publishes: which columns the BI file pseudonymises, which
-- tables an erasure request clears.
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
            {%- for column in node.columns.values() -%}
                {%- set column_meta = column.get('meta') or (column.get('config') or {}).get('meta') or {} -%}
                {%- set personal = column_meta.get('personal') -%}
                {%- if personal or keys.get(column.name) -%}
                    {%- do rows.append({
                        'schema': node.schema, 'table': relation, 'column': column.name,
                        'personal': personal, 'erasure': keys.get(column.name),
                        'resource': node.resource_type, 'node': node.unique_id
                    }) -%}
                {%- endif -%}
            {%- endfor -%}
            {%- for column_name, kind in keys.items() if column_name not in node.columns -%}
                {%- do rows.append({
                    'schema': node.schema, 'table': relation, 'column': column_name,
                    'personal': none, 'erasure': kind, 'resource': node.resource_type,
                    'node': node.unique_id
                }) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endfor -%}
{%- endif %}

with

classified (
    schema_name, table_name, column_name, personal_kind, erasure_kind, resource_type, node_id
) as (
    select
        cast(null as {{ dbt.type_string() }}),
        cast(null as {{ dbt.type_string() }}),
        cast(null as {{ dbt.type_string() }}),
        cast(null as {{ dbt.type_string() }}),
        cast(null as {{ dbt.type_string() }}),
        cast(null as {{ dbt.type_string() }}),
        cast(null as {{ dbt.type_string() }})
    {% for row in rows | sort(attribute='node') %}
    union all
    select
        {{ _privacy_literal(row.schema) }},
        {{ _privacy_literal(row.table) }},
        {{ _privacy_literal(row.column) }},
        {{ _privacy_literal(row.personal) }},
        {{ _privacy_literal(row.erasure) }},
        {{ _privacy_literal(row.resource) }},
        {{ _privacy_literal(row.node) }}
    {% endfor %}
),

final as (
    select
        schema_name,
        table_name,
        column_name,
        personal_kind,
        erasure_kind,
        resource_type,
        node_id
    from classified
    where schema_name is not null
)

select * from final
