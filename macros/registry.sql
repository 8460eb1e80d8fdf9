{#
    landing_tables(): every raw table, its base model (all versions), its staging model, its key
    and the model that publishes its kept rows; the quarantine and the reconciliation are
    generated from it. (The tags are listed in one place only: the catalog, macros/tag_catalog.sql.)
#}
{% macro landing_tables() %}
    {{ return([
        {'table': 'crm/accounts', 'base': 'base_crm__accounts', 'staging': 'stg_crm__accounts', 'key': 'account_id', 'published': 'dim_customers'},
        {'table': 'crm/contacts', 'base': 'base_crm__contacts', 'staging': 'stg_crm__contacts', 'key': 'contact_id', 'published': 'dim_contacts'},
        {'table': 'crm/manual_tags', 'base': 'base_crm__manual_tags', 'staging': 'stg_crm__manual_tags', 'key': "account_id || '|' || tag_code", 'published': 'fct_manual_tag_actions'},
        {'table': 'orders/orders', 'base': 'base_orders__orders', 'staging': 'stg_orders__orders', 'key': 'order_id', 'published': 'fct_orders'},
        {'table': 'orders/order_items', 'base': 'base_orders__order_items', 'staging': 'stg_orders__order_items', 'key': "order_id || '#' || cast(line_no as " ~ dbt.type_string() ~ ")", 'published': 'fct_order_lines'},
        {'table': 'orders/products', 'base': 'base_orders__products', 'staging': 'stg_orders__products', 'key': 'product_id', 'published': 'dim_products'},
        {'table': 'orders/promotions', 'base': 'base_orders__promotions', 'staging': 'stg_orders__promotions', 'key': 'promotion_id', 'published': none},
        {'table': 'support/tickets', 'base': 'base_support__tickets', 'staging': 'stg_support__tickets', 'key': 'ticket_id', 'published': 'fct_tickets'},
        {'table': 'campaigns/campaigns', 'base': 'base_campaigns__campaigns', 'staging': 'stg_campaigns__campaigns', 'key': 'campaign_id', 'published': none},
        {'table': 'campaigns/campaign_events', 'base': 'base_campaigns__campaign_events', 'staging': 'stg_campaigns__campaign_events', 'key': 'event_id', 'published': 'fct_campaign_events'},
        {'table': 'campaigns/web_events', 'base': 'base_campaigns__web_events', 'staging': 'stg_campaigns__web_events', 'key': 'event_id', 'published': 'fct_web_events'},
        {'table': 'campaigns/attributed_orders', 'base': 'base_campaigns__attributed_orders', 'staging': 'stg_campaigns__attributed_orders', 'key': "order_id || '#' || campaign_id", 'published': none},
    ]) }}
{% endmacro %}
