-- churn_risk: how likely the customer has stopped buying, from the LTV model's BG/NBD probability
-- that the customer is still active (tag_ltv.probability_alive, fitted on the order history as
-- of the same run): below high_below_probability_alive -> high, below
-- medium_below_probability_alive -> medium, else low. Customers who never purchased have no ltv
-- row and get no tag. BG/NBD lets a customer drop out only after a repeat purchase, so a one-time
-- buyer's probability alive is 1 (low risk) however long ago the purchase: lifecycle_stage is
-- the tag that ages them.
with

ltv as (
    select
        customer_id,
        probability_alive,
        as_of_date
    from {{ ref('tag_ltv') }}
),

final as (
    select
        customer_id,
        'churn_risk' as tag_code,
        case
            when probability_alive < {{ tag_param('churn_risk', 'high_below_probability_alive') }} then 'high'
            when probability_alive < {{ tag_param('churn_risk', 'medium_below_probability_alive') }} then 'medium'
            else 'low'
        end as tag_value,
        -- unrounded: the evidence must show why a customer next to a boundary got its value
        'probability_alive = ' || {{ double_to_text('probability_alive') }} as evidence,
        as_of_date
    from ltv
    where probability_alive is not null
)

select * from final
