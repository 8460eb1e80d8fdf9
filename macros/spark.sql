{#
    Spark without Delta (plain Parquet tables: docs/engines.md, "Spark"): no merge, no
    delete. The incremental models are rebuilt in full on every run there: is_incremental()
    is false on Spark, so each model's SQL is its full-build SQL, and dbt-spark's
    insert_overwrite (no partitions: the whole table) swaps the result in. An incremental run
    then equals a full rebuild by construction; on Delta a merge strategy would make these
    models incremental as on DuckDB.
#}
{% macro is_incremental() %}
    {%- if target.type == 'spark' -%}{{ return(false) }}{%- endif -%}
    {{ return(dbt.is_incremental()) }}
{% endmacro %}


{#
    Seeds on Spark: dbt-spark's session cursor pastes each value into the INSERT between
    quotes without escaping, so a seed text with an apostrophe (tag_health_thresholds) broke
    the statement. The values are written as escaped Spark literals instead.
#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {% set column_override = model['config'].get('column_types', {}) %}
    {% set statements = [] %}
    {% for chunk in agate_table.rows | batch(get_batch_size()) %}
        {% set rows = [] %}
        {% for row in chunk %}
            {% set values = [] %}
            {% for col_name in agate_table.column_names %}
                {% set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) %}
                {% set value = row[loop.index0] %}
                {% if value is none %}
                    {% do values.append('cast(null as ' ~ type ~ ')') %}
                {% else %}
                    {% set text = value | string %}
                    {% do values.append("cast('" ~ text | replace('\\', '\\\\') | replace("'", "\\'") ~ "' as " ~ type ~ ')') %}
                {% endif %}
            {% endfor %}
            {% do rows.append('(' ~ values | join(', ') ~ ')') %}
        {% endfor %}
        {% set sql = 'insert into ' ~ this.render() ~ ' values ' ~ rows | join(', ') %}
        {% do adapter.add_query(sql, abridge_sql_log=True) %}
        {% if loop.index0 == 0 %}{% do statements.append(sql) %}{% endif %}
    {% endfor %}
    {{ return(statements[0] if statements else '') }}
{% endmacro %}
