{#
    Segments (models/marts/segments/, docs/segments.md).

    segment_holdout_bucket(salt, customer_id)
        0-9999: the first 32 bits of md5(salt || ':' || customer_id) as an unsigned number,
        modulo 10,000. md5 and the hex digits are the same on every engine, so the holdout
        group is too (crm_tags.segments.holdout_bucket is the same function in Python).

    replace_periods (a custom incremental strategy, used by segment_membership_history)
        For every unique_key the model returns, its stored rows are replaced by the returned
        ones; a returned row with a null valid_from stands for a key left with no row (it
        deletes, and is not inserted).
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

{% macro get_incremental_replace_periods_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set source = arg_dict['temp_relation'] -%}
    {%- set keys = arg_dict['unique_key'] -%}
    {%- set keys = [keys] if keys is string else keys -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }} as replaced_target
    using {{ source }} as replacing
    where {% for key in keys %}replaced_target.{{ key }} = replacing.{{ key }}{{ ' and ' if not loop.last }}{% endfor %};

    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ source }} where valid_from is not null
{%- endmacro %}
