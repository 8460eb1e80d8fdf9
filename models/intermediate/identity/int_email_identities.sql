-- Email -> customer, from kept contacts (emails trimmed and lower-cased in staging).
-- An email on contacts of two or more accounts is ambiguous: it resolves to no customer.
with

contacts as (
    select * from {{ ref('dim_contacts') }} where email is not null
),

emails as (
    select
        email,
        count(distinct customer_id) as account_count,
        min(customer_id) as any_customer_id
    from contacts
    group by email
),

final as (
    select
        email,
        case when account_count = 1 then any_customer_id end as customer_id,
        account_count,
        account_count > 1 as is_ambiguous
    from emails
)

select * from final
