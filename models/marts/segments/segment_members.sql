-- marts.segment_members: one row per member of each segment as of the run date, with its
-- holdout flag: a segment with holdout_percent p holds out the customers whose bucket (the
-- first 32 bits of md5(holdout_salt || ':' || customer_id), modulo 10,000) is below p * 100.
-- The bucket depends on the salt and the customer id only: stable across runs and engines.
with

matches as (
    select * from {{ ref('segment_matches') }}
),

definitions as (
    select * from {{ ref('segment_definitions') }}
),

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
