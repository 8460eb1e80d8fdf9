-- marts.segment_members: one row per member of each segment as of the run date, with its
-- holdout flag, in one statement over marts.customer_profile (and marts.customer_tags for the
-- multi-valued tags): each segment's condition, compiled from the segments file into
-- intermediate.segment_definitions, adds one column per segment (macros/segments.sql), then the
-- columns become rows. A segment with holdout_percent p holds out the customers whose bucket
-- (the first 32 bits of md5(holdout_salt || ':' || customer_id), modulo 10,000) is below
-- p * 100: it depends on the salt and the customer id only, stable across runs and engines.
-- The pre-hooks: drop the table of the former model segment_matches (now this statement), as a
-- warehouse built before would keep its customer ids out of reach of any erasure; on
-- PostgreSQL, standard_conforming_strings on (its default), as the conditions' values are
-- literals with quotes doubled, whose backslashes must read as plain characters.
{{ config(pre_hook=["drop table if exists intermediate.segment_matches"]
    + (["set standard_conforming_strings = on"] if target.type == 'postgres' else [])) }}
{%- set segments = segment_conditions(ref('segment_definitions')) %}
with

segment_profile as (
    select * from {{ ref('customer_profile') }}
),

-- read by the compiled conditions of has / is null on a multi-valued tag (none in an empty file)
segment_tags as (  -- noqa: ST03
    select
        customer_id,
        tag_code,
        tag_value
    from {{ ref('customer_tags') }}
),

definitions as (
    select * from {{ ref('segment_definitions') }}
),

{% if segments %}
{{ segment_layers('segment_profile', segments) }},

matches as (
    {{ segment_rows(segments) }}
),
{% else %}
matches as (
    select
        cast(null as {{ dbt.type_string() }}) as segment_code,
        cast(null as {{ dbt.type_string() }}) as customer_id
    from segment_profile
    where false
),
{% endif %}

final as (
    select
        matches.segment_code,
        matches.customer_id,
        {{ as_of_date() }} as as_of_date,
        -- the hash only for the segments that hold some out
        case
            when definitions.holdout_percent > 0
                then {{ segment_holdout_bucket('definitions.holdout_salt', 'matches.customer_id') }}
                    < cast(definitions.holdout_percent * 100 as integer)
            else false
        end as is_holdout
    from matches
    inner join definitions on matches.segment_code = definitions.segment_code
)

select * from final
order by segment_code, customer_id
