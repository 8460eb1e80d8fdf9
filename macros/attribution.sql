{#
    Resolves an interaction to a customer: a direct account_id when the source system set one,
    else the email through int_email_identities. Emits customer_id and attribution_status
    (account_id, email, ambiguous_email, unknown_email, no_identity) so unattributed rows are
    kept and counted, never dropped. Expects the identities relation joined as `identities`.
#}
{% macro attributed_customer_columns(account_id_expression, email_expression) -%}
    coalesce({{ account_id_expression }}, identities.customer_id) as customer_id,
    case
        when {{ account_id_expression }} is not null then 'account_id'
        when {{ email_expression }} is null then 'no_identity'
        when identities.is_ambiguous then 'ambiguous_email'
        when identities.customer_id is not null then 'email'
        else 'unknown_email'
    end as attribution_status
{%- endmacro %}


{#
    The identities relation for that join (select it as `identities`). `email is not null`
    matches nothing less (a null email joins nothing), but DuckDB then estimates this side
    smaller than the kept events or tickets and builds its hash table here when a read takes
    every row (the reconciliation's counts), not on 17M events.
#}
{% macro email_identities() -%}
    select * from {{ ref('int_email_identities') }} where email is not null
{%- endmacro %}
