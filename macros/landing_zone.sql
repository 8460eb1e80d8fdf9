{#
    Registers the Parquet landing zone ($CRM_RAW_DIR, default data/raw) as one view per dbt
    source table, in the source's schema (raw_crm.accounts, raw_orders.orders, ...).

    The contract lives in the source YAML: every listed column is required in every delivery
    file and is cast to its data_type. Per table this macro
      - lists the delivery files (a missing or empty folder is an empty table, not an error);
      - fails the run, naming table, file and column, when a file lacks a required column or
        holds values that cannot be cast to the contract type;
      - creates the view: the union of all files by column name (extra columns ignored), plus
        lineage columns _source_file (relative to $CRM_RAW_DIR, so a moved landing zone is
        the same zone), _source_row_number and _delivered_at (file mtime, used only to order
        re-deliveries that carry no timestamp of their own).
    It also registers raw_landing.delivery_files (see _register_delivery_files).
    It runs as on-run-start, so a delivery error stops the run before any model is built.
#}
{% macro register_landing_zone() %}
    {% if not execute %}{{ return('') }}{% endif %}
    {% set raw_dir = env_var('CRM_RAW_DIR', 'data/raw').rstrip('/') %}
    {% set delivery_files = [] %}
    {% for source_node in graph.sources.values() | sort(attribute='unique_id') %}
        {% set landing_path = source_node.meta.get('landing_path') %}
        {% if landing_path %}
            {% set files = _register_landing_table(source_node, raw_dir ~ '/' ~ landing_path, landing_path, raw_dir ~ '/') %}
            {% for f in files %}{% do delivery_files.append({'table': landing_path, 'path': f}) %}{% endfor %}
        {% endif %}
    {% endfor %}
    {% do _register_delivery_files(delivery_files, raw_dir ~ '/') %}
    {{ return('') }}
{% endmacro %}


{#
    raw_landing.delivery_files: one row per delivery file of every table, read from the Parquet
    footers and the file system only (no data scan): its path relative to $CRM_RAW_DIR (the
    identity the incremental base models load files by), mtime, size and row count. A table,
    read once per invocation: every base model and the audit models look it up.
#}
{% macro _register_delivery_files(delivery_files, raw_dir_prefix) %}
    {% do run_query('create schema if not exists raw_landing') %}
    {% set empty = "select cast(null as varchar) as source_table, cast(null as varchar) as source_file, "
        ~ "cast(null as timestamp) as delivered_at, cast(null as bigint) as file_bytes, "
        ~ "cast(null as bigint) as rows_delivered where false" %}
    {% if delivery_files | length == 0 %}
        {% do run_query('create or replace table raw_landing.delivery_files as ' ~ empty) %}
        {{ return('') }}
    {% endif %}
    {% set paths = [] %}
    {% set tables = [] %}
    {% for f in delivery_files %}
        {% do paths.append(_sql_string(f.path)) %}
        {% do tables.append('(' ~ _sql_string(f.path) ~ ', ' ~ _sql_string(f.table) ~ ')') %}
    {% endfor %}
    {% set path_list = '[' ~ paths | join(', ') ~ ']' %}
    {% do run_query(
        'create or replace table raw_landing.delivery_files as select files.source_table, '
        ~ 'substr(files.path, ' ~ (raw_dir_prefix | length + 1) ~ ') as source_file, '
        ~ 'cast(blob.last_modified as timestamp) as delivered_at, blob.size as file_bytes, '
        ~ 'meta.num_rows as rows_delivered '
        ~ 'from (values ' ~ tables | join(', ') ~ ') as files(path, source_table) '
        ~ 'join read_blob(' ~ path_list ~ ') as blob on blob.filename = files.path '
        ~ 'join parquet_file_metadata(' ~ path_list ~ ') as meta on meta.file_name = files.path'
    ) %}
{% endmacro %}


{% macro _sql_string(value) %}{{ return("'" ~ (value | string | replace("'", "''")) ~ "'") }}{% endmacro %}


{% macro _register_landing_table(source_node, folder, table_label, raw_dir_prefix) %}
    {% set columns = [] %}
    {% for column in source_node.columns.values() %}
        {% do columns.append({'name': column.name | lower, 'type': column.data_type | upper}) %}
    {% endfor %}
    {% set relation = source_node.schema ~ '.' ~ source_node.identifier %}
    {% do run_query('create schema if not exists ' ~ source_node.schema) %}

    {% set files = run_query(
        "select file from glob(" ~ _sql_string(folder ~ '/*.parquet') ~ ") order by file"
    ).columns[0].values() | list %}

    {% if files | length == 0 %}
        {% set typed_nulls = [] %}
        {% for c in columns %}
            {% do typed_nulls.append('cast(null as ' ~ c.type ~ ') as "' ~ c.name ~ '"') %}
        {% endfor %}
        {% do run_query(
            'create or replace view ' ~ relation ~ ' as select ' ~ typed_nulls | join(', ')
            ~ ', cast(null as varchar) as _source_file, cast(null as bigint) as _source_row_number'
            ~ ', cast(null as timestamp) as _delivered_at where false'
        ) %}
        {{ return([]) }}
    {% endif %}

    {% set file_list = [] %}
    {% for f in files %}{% do file_list.append(_sql_string(f)) %}{% endfor %}
    {% set file_list_sql = '[' ~ file_list | join(', ') ~ ']' %}

    {# One metadata read for all files: which columns each file has, and their Parquet types. #}
    {% set schema_rows = run_query(
        "select file_name, lower(name) as column_name, coalesce(converted_type, '') as converted_type, "
        ~ "coalesce(logical_type, '') as logical_type, coalesce(type, '') as physical_type "
        ~ "from parquet_schema(" ~ file_list_sql ~ ") where name <> 'schema'"
    ) %}
    {% set file_columns = {} %}
    {% for row in schema_rows.rows %}
        {% if row[0] not in file_columns %}{% do file_columns.update({row[0]: {}}) %}{% endif %}
        {% do file_columns[row[0]].update({row[1]: _parquet_family(row[2], row[3], row[4])}) %}
    {% endfor %}

    {% for f in files %}
        {% set present = file_columns.get(f, {}) %}
        {% for c in columns %}
            {% if c.name not in present %}
                {% do exceptions.raise_compiler_error(
                    "Delivery error in table " ~ table_label ~ ", file " ~ f ~ ": required column '"
                    ~ c.name ~ "' is missing (expected " ~ c.type ~ "). Nothing was built."
                ) %}
            {% endif %}
            {% if not _family_casts_to(present[c.name], c.type) %}
                {# Types differ (e.g. text where a number is due): accept only if every value casts. #}
                {% set bad = run_query(
                    'select count(*), min(cast("' ~ c.name ~ '" as varchar)) from read_parquet(' ~ _sql_string(f)
                    ~ ') where "' ~ c.name ~ '" is not null and try_cast("' ~ c.name ~ '" as ' ~ c.type ~ ') is null'
                ).rows[0] %}
                {% if bad[0] > 0 %}
                    {% do exceptions.raise_compiler_error(
                        "Delivery error in table " ~ table_label ~ ", file " ~ f ~ ": column '" ~ c.name
                        ~ "' cannot be cast to " ~ c.type ~ " (" ~ bad[0] ~ " value(s), e.g. '" ~ bad[1]
                        ~ "'). Nothing was built."
                    ) %}
                {% endif %}
            {% endif %}
        {% endfor %}
    {% endfor %}

    {% set select_list = [] %}
    {% for c in columns %}
        {% do select_list.append('cast(raw."' ~ c.name ~ '" as ' ~ c.type ~ ') as "' ~ c.name ~ '"') %}
    {% endfor %}
    {# the lineage of a file is computed once per file and joined, not once per row #}
    {% do run_query(
        'create or replace view ' ~ relation ~ ' as select ' ~ select_list | join(', ')
        ~ ', delivery.source_file as _source_file'
        ~ ', raw.file_row_number as _source_row_number'
        ~ ', delivery.delivered_at as _delivered_at'
        ~ ' from read_parquet(' ~ file_list_sql ~ ', union_by_name = true, filename = true, file_row_number = true) as raw'
        ~ ' left join (select filename, substr(filename, ' ~ (raw_dir_prefix | length + 1) ~ ') as source_file'
        ~ ', cast(last_modified as timestamp) as delivered_at from read_blob(' ~ file_list_sql ~ ')) as delivery'
        ~ ' on delivery.filename = raw.filename'
    ) %}
    {{ return(files) }}
{% endmacro %}


{# Parquet physical/logical type -> a coarse family, to decide whether a cast needs checking. #}
{% macro _parquet_family(converted_type, logical_type, physical_type) %}
    {% if converted_type == 'DECIMAL' or logical_type.startswith('DecimalType') %}{{ return('decimal') }}
    {% elif converted_type == 'DATE' or logical_type.startswith('DateType') %}{{ return('date') }}
    {% elif converted_type.startswith('TIMESTAMP') or logical_type.startswith('TimestampType') or physical_type == 'INT96' %}{{ return('timestamp') }}
    {% elif converted_type == 'UTF8' or logical_type.startswith('StringType') or physical_type == 'BYTE_ARRAY' %}{{ return('string') }}
    {% elif physical_type in ('INT32', 'INT64') %}{{ return('integer') }}
    {% elif physical_type in ('FLOAT', 'DOUBLE') %}{{ return('float') }}
    {% elif physical_type == 'BOOLEAN' %}{{ return('boolean') }}
    {% else %}{{ return('other') }}
    {% endif %}
{% endmacro %}


{% macro _family_casts_to(family, target_type) %}
    {% set compatible = {
        'VARCHAR': ['string', 'integer', 'decimal', 'float', 'boolean', 'date', 'timestamp'],
        'INTEGER': ['integer'],
        'DECIMAL(18,2)': ['decimal', 'integer', 'float'],
        'TIMESTAMP': ['timestamp', 'date'],
        'DATE': ['date', 'timestamp'],
        'BOOLEAN': ['boolean'],
    } %}
    {{ return(family in compatible.get(target_type, [])) }}
{% endmacro %}
