-- Every tag row in the marts carries its evidence (the metric or text it was derived from):
-- none null or blank, account-level and contact-level alike.
with

customer_tags as (
    select * from {{ ref('customer_tags') }}
),

contact_tags as (
    select * from {{ ref('contact_tags') }}
),

tag_rows as (
    select
        'customer_tags' as mart,
        customer_id as holder_id,
        tag_code,
        tag_value,
        evidence
    from customer_tags
    union all
    select
        'contact_tags' as mart,
        contact_id as holder_id,
        tag_code,
        tag_value,
        evidence
    from contact_tags
),

final as (
    select * from tag_rows
    where evidence is null or trim(evidence) = ''
)

select * from final
