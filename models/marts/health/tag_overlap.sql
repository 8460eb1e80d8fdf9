-- marts.tag_overlap: how far two tags describe the same customers, one row per ordered pair of
-- catalog tags (both orders, so a heatmap reads either way) at this run date.
-- jaccard: shared holders / holders of either. A high Jaccard alone is no redundancy here: every
-- order-based tag is held by the customers who bought, so value_agreement also asks whether the
-- values correspond (for the shared holders, the share whose value of one tag is the value of
-- the other that most of its holders have, the smaller of both directions). A duplicated tag has
-- both at 1; customer_grade and lifecycle_stage (held by every customer) have a Jaccard of 1 and
-- values that do not correspond. The thresholds: seeds/tag_health_thresholds.csv.
with

tags as (
    select tag_code from {{ ref('tag_definitions') }}
),

holdings as (
    select
        customer_id,
        tag_code,
        tag_value
    from {{ ref('int_tag_holdings') }}
),

-- one row per tag a customer holds (holdings has one row per value). Every count below is a
-- count(*) over a join of unique rows, not a count(distinct) over the exploded pairs
-- (docs/benchmark.md, "Engines at 100,000 customers")
held as (
    select
        customer_id,
        tag_code
    from holdings
    group by customer_id, tag_code
),

tag_holders as (
    select
        tag_code,
        count(*) as holders
    from held
    group by tag_code
),

shared as (
    select
        held_a.tag_code as tag_a,
        held_b.tag_code as tag_b,
        count(*) as shared_holders
    from held as held_a
    inner join held as held_b
        on
            held_a.customer_id = held_b.customer_id
            and held_a.tag_code <> held_b.tag_code
    group by held_a.tag_code, held_b.tag_code
),

value_pairs as (
    select
        holdings_a.tag_code as tag_a,
        holdings_a.tag_value as value_a,
        holdings_b.tag_code as tag_b,
        holdings_b.tag_value as value_b,
        count(*) as holders
    from holdings as holdings_a
    inner join holdings as holdings_b
        on
            holdings_a.customer_id = holdings_b.customer_id
            and holdings_a.tag_code <> holdings_b.tag_code
    group by holdings_a.tag_code, holdings_a.tag_value, holdings_b.tag_code, holdings_b.tag_value
),

-- the customers holding value_a who hold any value of tag_b
value_a_with_b as (
    select
        holdings_a.tag_code as tag_a,
        holdings_a.tag_value as value_a,
        held_b.tag_code as tag_b,
        count(*) as holders
    from holdings as holdings_a
    inner join held as held_b
        on
            holdings_a.customer_id = held_b.customer_id
            and holdings_a.tag_code <> held_b.tag_code
    group by holdings_a.tag_code, holdings_a.tag_value, held_b.tag_code
),

best_match as (
    select
        tag_a,
        value_a,
        tag_b,
        max(holders) as matched_holders
    from value_pairs
    group by tag_a, value_a, tag_b
),

agreement_one_way as (
    select
        value_a_with_b.tag_a,
        value_a_with_b.tag_b,
        {{ safe_share('sum(best_match.matched_holders)', 'sum(value_a_with_b.holders)') }} as agreement_share
    from value_a_with_b
    inner join best_match
        on
            value_a_with_b.tag_a = best_match.tag_a
            and value_a_with_b.value_a = best_match.value_a
            and value_a_with_b.tag_b = best_match.tag_b
    group by value_a_with_b.tag_a, value_a_with_b.tag_b
),

tag_pairs as (
    select
        tags_a.tag_code as tag_a,
        tags_b.tag_code as tag_b
    from tags as tags_a
    cross join tags as tags_b
    where tags_a.tag_code <> tags_b.tag_code
),

measured as (
    select
        tag_pairs.tag_a,
        tag_pairs.tag_b,
        coalesce(holders_a.holders, 0) as holders_a,
        coalesce(holders_b.holders, 0) as holders_b,
        coalesce(shared.shared_holders, 0) as shared_holders,
        agreement_forward.agreement_share as agreement_a_to_b,
        agreement_backward.agreement_share as agreement_b_to_a
    from tag_pairs
    left join tag_holders as holders_a on tag_pairs.tag_a = holders_a.tag_code
    left join tag_holders as holders_b on tag_pairs.tag_b = holders_b.tag_code
    left join shared on tag_pairs.tag_a = shared.tag_a and tag_pairs.tag_b = shared.tag_b
    left join agreement_one_way as agreement_forward
        on tag_pairs.tag_a = agreement_forward.tag_a and tag_pairs.tag_b = agreement_forward.tag_b
    left join agreement_one_way as agreement_backward
        on tag_pairs.tag_a = agreement_backward.tag_b and tag_pairs.tag_b = agreement_backward.tag_a
),

final as (
    select
        {{ as_of_date() }} as as_of_date,
        tag_a,
        tag_b,
        holders_a,
        holders_b,
        shared_holders,
        coalesce({{ safe_share('shared_holders', 'holders_a + holders_b - shared_holders') }}, 0)
            as jaccard,
        case
            when agreement_a_to_b is null or agreement_b_to_a is null then null
            when agreement_a_to_b < agreement_b_to_a then agreement_a_to_b
            else agreement_b_to_a
        end as value_agreement
    from measured
)

select * from final
