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
    {{ return(adapter.dispatch('register_landing_zone', 'crm_tags')()) }}
{% endmacro %}


{#
    Engines that cannot read the files (PostgreSQL): `crm-tags load` (src/crm_tags/load.py)
    copies them, with the same contract checks and lineage columns, into the raw tables and
    raw_landing.delivery_files before dbt runs. The run only checks that it did.
#}
{% macro default__register_landing_zone() %}
    {% if not execute %}{{ return('') }}{% endif %}
    {% set found = adapter.get_relation(database=target.database, schema='raw_landing', identifier='delivery_files') %}
    {% if found is none %}
        {% do exceptions.raise_compiler_error(
            "The landing zone is not loaded into " ~ target.type ~ " (raw_landing.delivery_files is missing): "
            ~ "run `crm-tags load` first (docs/engines.md). Nothing was built."
        ) %}
    {% endif %}
    {{ return('') }}
{% endmacro %}


{% macro duckdb__register_landing_zone() %}
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


{# The contract's columns of a landing table (its source YAML): name in lower case, type in upper. #}
{% macro _contract_columns(source_node) %}
    {% set columns = [] %}
    {% for column in source_node.columns.values() %}
        {% do columns.append({'name': column.name | lower, 'type': column.data_type | upper}) %}
    {% endfor %}
    {{ return(columns) }}
{% endmacro %}


{% macro _register_landing_table(source_node, folder, table_label, raw_dir_prefix) %}
    {% set columns = _contract_columns(source_node) %}
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

    {#
        One query per table finds every (file, required column) that is missing or delivered
        with a Parquet type outside the contract type's family; no row means every file is
        fine. Only those few are then looked at (looking at every file and column in Jinja
        was slower, with 1M customers' ~2,300 files: docs/benchmark.md).
    #}
    {% set expected = [] %}
    {% for c in columns %}
        {% do expected.append('(' ~ loop.index ~ ', ' ~ _sql_string(c.name) ~ ', ' ~ _sql_string(c.type) ~ ')') %}
    {% endfor %}
    {% set problems = run_query(
        'with expected (ordinal, column_name, column_type) as (values ' ~ expected | join(', ') ~ '), '
        ~ 'delivered as (select unnest(' ~ file_list_sql ~ ') as file_name), '
        ~ 'found as (select file_name, lower(name) as column_name, ' ~ _parquet_family_sql() ~ ' as family '
        ~ "from parquet_schema(" ~ file_list_sql ~ ") where name <> 'schema') "
        ~ 'select delivered.file_name, expected.column_name, expected.column_type, '
        ~ 'bool_or(found.family is not null) as is_present '
        ~ 'from delivered cross join expected '
        ~ 'left join found on found.file_name = delivered.file_name and found.column_name = expected.column_name '
        ~ 'group by all having not coalesce(bool_or(' ~ _family_casts_to_sql('found.family', 'expected.column_type') ~ '), false) '
        ~ 'order by delivered.file_name, any_value(expected.ordinal)'
    ) %}
    {% for f, column_name, column_type, present in problems.rows %}
        {% if not present %}
            {% do exceptions.raise_compiler_error(
                "Delivery error in table " ~ table_label ~ ", file " ~ f ~ ": required column '"
                ~ column_name ~ "' is missing (expected " ~ column_type ~ "). Nothing was built."
            ) %}
        {% endif %}
        {# Types differ (e.g. text where a number is due): accept only if every value casts. #}
        {% set bad = run_query(
            'select count(*), min(cast("' ~ column_name ~ '" as varchar)) from read_parquet(' ~ _sql_string(f)
            ~ ') where "' ~ column_name ~ '" is not null and try_cast("' ~ column_name ~ '" as ' ~ column_type ~ ') is null'
        ).rows[0] %}
        {% if bad[0] > 0 %}
            {% do exceptions.raise_compiler_error(
                "Delivery error in table " ~ table_label ~ ", file " ~ f ~ ": column '" ~ column_name
                ~ "' cannot be cast to " ~ column_type ~ " (" ~ bad[0] ~ " value(s), e.g. '" ~ bad[1]
                ~ "'). Nothing was built."
            ) %}
        {% endif %}
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


{# Parquet physical/logical type (columns of parquet_schema()) -> a coarse family, as SQL. #}
{% macro _parquet_family_sql() -%}
    case
        when converted_type = 'DECIMAL' or logical_type like 'DecimalType%' then 'decimal'
        when converted_type = 'DATE' or logical_type like 'DateType%' then 'date'
        when converted_type like 'TIMESTAMP%' or logical_type like 'TimestampType%' or type = 'INT96' then 'timestamp'
        when converted_type = 'UTF8' or logical_type like 'StringType%' or type = 'BYTE_ARRAY' then 'string'
        when type in ('INT32', 'INT64') then 'integer'
        when type in ('FLOAT', 'DOUBLE') then 'float'
        when type = 'BOOLEAN' then 'boolean'
        else 'other'
    end
{%- endmacro %}


{# Whether values of a family always cast to the contract type (else every value is checked). #}
{% macro _family_casts_to_sql(family, target_type) -%}
    case {{ target_type }}
        when 'VARCHAR' then {{ family }} in ('string', 'integer', 'decimal', 'float', 'boolean', 'date', 'timestamp')
        when 'INTEGER' then {{ family }} in ('integer')
        when 'DECIMAL(18,2)' then {{ family }} in ('decimal', 'integer', 'float')
        when 'TIMESTAMP' then {{ family }} in ('timestamp', 'date')
        when 'DATE' then {{ family }} in ('date', 'timestamp')
        when 'BOOLEAN' then {{ family }} in ('boolean')
        else false
    end
{%- endmacro %}


{#
    Spark reads the delivery files natively (docs/engines.md, "Spark"). One listing of the
    zone (the binaryFile source: path, size, mtime of every *.parquet, no content read) gives
    raw_landing.delivery_files; per table, each file's schema (its Parquet footer, DESCRIBE
    QUERY) is checked against the contract as on DuckDB (missing column, a type outside the
    contract type's family whose values do not all cast), then the view reads the files with
    Spark's file metadata as the file of origin (_metadata.file_path, file_modification_time)
    and _metadata.row_index as the row number within the file. A file's footer types and row
    count are read once (raw_landing.file_schemas, by path, size and mtime).
#}
{% macro spark__register_landing_zone() %}
    {% if not execute %}{{ return('') }}{% endif %}
    {% set raw_dir = env_var('CRM_RAW_DIR', 'data/raw').rstrip('/') %}
    {% do run_query('create schema if not exists raw_landing') %}
    {% do run_query(
        "create or replace temporary view crm_landing_listing using binaryFile options (path "
        ~ _sql_string(raw_dir) ~ ", recursiveFileLookup 'true', pathGlobFilter '*.parquet')"
    ) %}
    {% set listing = run_query('select path, length, modificationTime from crm_landing_listing order by path') %}
    {#
        Each dbt run registers the zone (on-run-start), and the host waves around the Python
        models run dbt several times: when the files (path, size, mtime) are those registered
        last time, the views and the delivery files stand as they are.
    #}
    {% set fingerprint_parts = [raw_dir] %}
    {% for path, size, mtime in listing.rows %}{% do fingerprint_parts.append(path ~ '|' ~ size ~ '|' ~ mtime) %}{% endfor %}
    {% set fingerprint = local_md5(fingerprint_parts | join('\n')) %}
    {% if adapter.get_relation(database=none, schema='raw_landing', identifier='registered_zone') is not none %}
        {% set registered = run_query('select fingerprint from raw_landing.registered_zone').columns[0].values() %}
        {% if fingerprint in registered %}{{ return('') }}{% endif %}
        {% do run_query('drop table raw_landing.registered_zone') %}
    {% endif %}
    {#
        What was read of each file before (its columns' Spark types from the footer, its row
        count), by path, size and mtime: a file is described once in the life of the zone,
        not on every registration (a daily run adds a few files to thousands). The contract
        is checked on every registration, on these types.
    #}
    {% set known = {} %}
    {% if adapter.get_relation(database=none, schema='raw_landing', identifier='file_schemas') is not none %}
        {% for key, columns, rows in run_query('select file_key, columns, rows_delivered from raw_landing.file_schemas').rows %}
            {% do known.update({key: {'columns': fromjson(columns), 'rows': rows}}) %}
        {% endfor %}
    {% endif %}
    {% set delivery_rows = [] %}
    {% set schema_rows = [] %}
    {% for source_node in graph.sources.values() | sort(attribute='unique_id') %}
        {% set landing_path = source_node.meta.get('landing_path') %}
        {% if landing_path %}
            {% set files = [] %}
            {% for path, size, mtime in listing.rows %}
                {% set parts = path.rsplit('/', 1) %}
                {% if parts[0].endswith('/' ~ landing_path) %}
                    {% do files.append({'uri': path, 'name': parts[1], 'size': size, 'mtime': mtime,
                                        'key': path ~ '|' ~ size ~ '|' ~ mtime,
                                        'source_file': landing_path ~ '/' ~ parts[1]}) %}
                {% endif %}
            {% endfor %}
            {% set counts = _spark_register_landing_table(source_node, raw_dir ~ '/' ~ landing_path, landing_path, files, known) %}
            {% for f in files %}
                {% do delivery_rows.append('(' ~ _sql_string(landing_path) ~ ', ' ~ _sql_string(f.source_file)
                    ~ ', cast(' ~ _sql_string(f.mtime) ~ ' as timestamp), cast(' ~ f.size ~ ' as bigint), cast('
                    ~ counts.get(f.uri, 0) ~ ' as bigint))') %}
                {% do schema_rows.append('(' ~ _sql_string(f.key) ~ ', ' ~ _sql_string(tojson(f.columns))
                    ~ ', cast(' ~ counts.get(f.uri, 0) ~ ' as bigint))') %}
            {% endfor %}
        {% endif %}
    {% endfor %}
    {% do run_query('drop table if exists raw_landing.file_schemas') %}
    {% if schema_rows %}
        {% do run_query('create table raw_landing.file_schemas using parquet as select * from values '
            ~ schema_rows | join(', ') ~ ' as files(file_key, columns, rows_delivered)') %}
    {% endif %}
    {% do run_query('drop table if exists raw_landing.delivery_files') %}
    {% if delivery_rows %}
        {% set rows_sql = 'select * from values ' ~ delivery_rows | join(', ')
            ~ ' as files(source_table, source_file, delivered_at, file_bytes, rows_delivered)' %}
    {% else %}
        {% set rows_sql = "select cast(null as string) as source_table, cast(null as string) as source_file, "
            ~ "cast(null as timestamp) as delivered_at, cast(null as bigint) as file_bytes, "
            ~ "cast(null as bigint) as rows_delivered where false" %}
    {% endif %}
    {% do run_query('create table raw_landing.delivery_files using parquet as ' ~ rows_sql) %}
    {% do run_query('drop table if exists raw_landing.registered_zone') %}
    {% do run_query("create table raw_landing.registered_zone using parquet as select '" ~ fingerprint ~ "' as fingerprint") %}
    {{ return('') }}
{% endmacro %}


{% macro _spark_type(contract_type) %}
    {{ return({'VARCHAR': 'string'}.get(contract_type, contract_type | lower)) }}
{% endmacro %}


{# A Spark data type (DESCRIBE output) -> the coarse family of _parquet_family_sql. #}
{% macro _spark_family(data_type) %}
    {% set t = data_type | lower %}
    {% if t.startswith('decimal') %}{{ return('decimal') }}
    {% elif t in ('tinyint', 'smallint', 'int', 'bigint') %}{{ return('integer') }}
    {% elif t in ('float', 'double') %}{{ return('float') }}
    {% elif t.startswith('timestamp') %}{{ return('timestamp') }}
    {% elif t in ('date', 'string', 'boolean') %}{{ return(t) }}
    {% elif t.startswith('varchar') or t.startswith('char') %}{{ return('string') }}
    {% else %}{{ return('other') }}{% endif %}
{% endmacro %}


{# The families whose values always cast to a contract type (as _family_casts_to_sql). #}
{% macro _spark_family_casts(family, contract_type) %}
    {% set ok = {
        'VARCHAR': ['string', 'integer', 'decimal', 'float', 'boolean', 'date', 'timestamp'],
        'INTEGER': ['integer'],
        'DECIMAL(18,2)': ['decimal', 'integer', 'float'],
        'TIMESTAMP': ['timestamp', 'date'],
        'DATE': ['date', 'timestamp'],
        'BOOLEAN': ['boolean'],
    } %}
    {{ return(family in ok.get(contract_type, [])) }}
{% endmacro %}


{#
    Checks one table's files against the contract and creates its view; returns {file uri:
    rows}. known: {file key: {columns, rows}} of files read before; each file gets its
    columns ({name: Spark type}) set here.
#}
{% macro _spark_register_landing_table(source_node, folder, table_label, files, known) %}
    {% set columns = _contract_columns(source_node) %}
    {% set relation = source_node.schema ~ '.' ~ source_node.identifier %}
    {% do run_query('create schema if not exists ' ~ source_node.schema) %}

    {% if files | length == 0 %}
        {% set typed_nulls = [] %}
        {% for c in columns %}
            {% do typed_nulls.append('cast(null as ' ~ _spark_type(c.type) ~ ') as `' ~ c.name ~ '`') %}
        {% endfor %}
        {% do run_query(
            'create or replace view ' ~ relation ~ ' as select ' ~ typed_nulls | join(', ')
            ~ ', cast(null as string) as _source_file, cast(null as bigint) as _source_row_number'
            ~ ', cast(null as timestamp) as _delivered_at where false'
        ) %}
        {{ return({}) }}
    {% endif %}

    {# files grouped by the Spark types of their contract columns: one scan per group #}
    {% set groups = {} %}
    {% for f in files %}
        {% set found = {} %}
        {% if f.key in known %}
            {% do found.update(known[f.key].columns) %}
        {% else %}
            {% for row in run_query('describe query select * from parquet.`' ~ f.uri ~ '`').rows %}
                {% do found.update({row[0] | lower: row[1]}) %}
            {% endfor %}
        {% endif %}
        {% do f.update({'columns': found}) %}
        {% set signature = [] %}
        {% for c in columns %}
            {% if c.name not in found %}
                {% do exceptions.raise_compiler_error(
                    "Delivery error in table " ~ table_label ~ ", file " ~ f.source_file ~ ": required column '"
                    ~ c.name ~ "' is missing (expected " ~ c.type ~ "). Nothing was built."
                ) %}
            {% endif %}
            {% if not _spark_family_casts(_spark_family(found[c.name]), c.type) %}
                {# types differ (e.g. text where a number is due): accept only if every value casts #}
                {% set bad = run_query(
                    'select count(*), min(cast(`' ~ c.name ~ '` as string)) from parquet.`' ~ f.uri ~ '` where `'
                    ~ c.name ~ '` is not null and try_cast(`' ~ c.name ~ '` as ' ~ _spark_type(c.type) ~ ') is null'
                ).rows[0] %}
                {% if bad[0] > 0 %}
                    {% do exceptions.raise_compiler_error(
                        "Delivery error in table " ~ table_label ~ ", file " ~ f.source_file ~ ": column '" ~ c.name
                        ~ "' cannot be cast to " ~ c.type ~ " (" ~ bad[0] ~ " value(s), e.g. '" ~ bad[1]
                        ~ "'). Nothing was built."
                    ) %}
                {% endif %}
            {% endif %}
            {% do signature.append(found[c.name]) %}
        {% endfor %}
        {% set key = signature | join(',') %}
        {% if key not in groups %}{% do groups.update({key: []}) %}{% endif %}
        {% do groups[key].append(f) %}
    {% endfor %}

    {% set select_list = [] %}
    {% for c in columns %}
        {% do select_list.append('cast(raw.`' ~ c.name ~ '` as ' ~ _spark_type(c.type) ~ ') as `' ~ c.name ~ '`') %}
    {% endfor %}
    {% set scans = [] %}
    {% for key, group in groups.items() %}
        {% if groups | length == 1 %}
            {% set glob = folder ~ '/*.parquet' %}
        {% else %}
            {% set names = [] %}
            {% for f in group %}{% do names.append(f.name) %}{% endfor %}
            {% set glob = folder ~ '/{' ~ names | join(',') ~ '}' %}
        {% endif %}
        {% do scans.append(
            'select ' ~ select_list | join(', ')
            ~ ', ' ~ _sql_string(table_label ~ '/') ~ " || regexp_extract(raw._metadata.file_path, '[^/]*$', 0) as _source_file"
            ~ ', raw._metadata.row_index as _source_row_number'
            ~ ', cast(raw._metadata.file_modification_time as timestamp) as _delivered_at'
            ~ ' from parquet.`' ~ glob ~ '` as raw'
        ) %}
    {% endfor %}
    {% do run_query('create or replace view ' ~ relation ~ ' as ' ~ scans | join(' union all ')) %}

    {% set counts = {} %}
    {% for f in files if f.key in known %}{% do counts.update({f.uri: known[f.key].rows}) %}{% endfor %}
    {% if counts | length < files | length %}
        {% for path, n in run_query(
            'select _metadata.file_path, count(*) from parquet.`' ~ folder ~ '/*.parquet` group by 1'
        ).rows %}
            {% do counts.update({path: n}) %}
        {% endfor %}
    {% endif %}
    {{ return(counts) }}
{% endmacro %}
