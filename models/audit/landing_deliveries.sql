-- Rows per delivery file and raw table, as landed (before any cleaning): the "rows in" side
-- of the reconciliation. Audit models are the one place besides staging that read sources.
with

deliveries as (
    {% set landing = [
        ('crm/accounts', source('crm', 'accounts')),
        ('crm/contacts', source('crm', 'contacts')),
        ('crm/manual_tags', source('crm', 'manual_tags')),
        ('orders/orders', source('orders', 'orders')),
        ('orders/order_items', source('orders', 'order_items')),
        ('orders/products', source('orders', 'products')),
        ('orders/promotions', source('orders', 'promotions')),
        ('support/tickets', source('support', 'tickets')),
        ('campaigns/campaigns', source('campaigns', 'campaigns')),
        ('campaigns/campaign_events', source('campaigns', 'campaign_events')),
        ('campaigns/web_events', source('campaigns', 'web_events')),
        ('campaigns/attributed_orders', source('campaigns', 'attributed_orders')),
    ] %}
    {% for table_label, relation in landing %}
    select
        '{{ table_label }}' as source_table,
        _source_file as source_file,
        count(*) as rows_delivered,
        max(_delivered_at) as delivered_at,
    from {{ relation }}
    group by _source_file
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),

final as (
    select * from deliveries
)

select * from final
order by source_table, source_file
