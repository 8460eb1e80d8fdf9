{#
    Segments (models/marts/segments/, docs/segments.md).

    segment_holdout_bucket(salt, customer_id)
        0-9999: the first 32 bits of md5(salt || ':' || customer_id) as an unsigned number,
        modulo 10,000. md5 and the hex digits are the same on every engine, so the holdout
        group is too (crm_tags.segments.holdout_bucket is the same function in Python).

    The membership history's periods: period_history and replace_periods in macros/history.sql.
#}

{% macro segment_holdout_bucket(salt, customer_id) -%}
    {{ return(adapter.dispatch('segment_holdout_bucket', 'crm_tags')(salt, customer_id)) }}
{%- endmacro %}

{% macro default__segment_holdout_bucket(salt, customer_id) -%}
    (cast(('0x' || substr({{ dbt.hash(dbt.concat([salt, "':'", customer_id])) }}, 1, 8)) as bigint) % 10000)
{%- endmacro %}

{% macro postgres__segment_holdout_bucket(salt, customer_id) -%}
    (('x' || substr({{ dbt.hash(dbt.concat([salt, "':'", customer_id])) }}, 1, 8))::bit(32)::bigint % 10000)
{%- endmacro %}
