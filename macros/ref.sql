{#
    ref() without the database part: "schema"."table" instead of "warehouse"."schema"."table".

    DuckDB 1.4 stores a view's SQL with the catalog it was created in, and the catalog of a
    DuckDB file is the name it was opened under. The warehouse is built as a candidate file and
    renamed over the published one (crm_tags.quality.publish), and BI tools open it under any
    name: a view naming the build's catalog fails there ("Catalog ... does not exist").
    Relations without the database resolve in the file that holds the view. (DuckDB fixed
    this upstream after 1.4: duckdb/duckdb#25603.) The pattern is dbt's documented builtins
    override; tests/test_warehouse.py checks every view in a renamed copy.
#}
{% macro ref() %}
    {%- set version = kwargs.get('version') or kwargs.get('v') -%}
    {%- if (varargs | length) == 1 -%}
        {%- set relation = builtins.ref(varargs[0], version=version) -%}
    {%- else -%}
        {%- set relation = builtins.ref(varargs[0], varargs[1], version=version) -%}
    {%- endif -%}
    {{ return(relation.include(database=false)) }}
{% endmacro %}
