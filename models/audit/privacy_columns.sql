-- The personal-data classification of the project, as the model and source YAML declare it
-- (docs/privacy.md): one row per column that holds personal data (column meta `personal`) or
-- identifies a customer for erasure (model meta `erasure_key` / `erasure_keys`). The publish
-- step reads it from the file it publishes: which columns the BI file pseudonymises, which
-- tables an erasure request clears.
{% set rows = privacy_classification() %}

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
