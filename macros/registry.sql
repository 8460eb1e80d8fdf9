{#
    The two lists a newcomer edits (see docs/adding-a-tag.md):

    account_tags(): every account-level tag of seeds/tag_catalog.csv and the model that computes
    it. int_customer_tag_values (the rows of the view marts.customer_tags) unions these models;
    marts.customer_profile gets one column per single-valued tag. `model: none` = catalogued
    but not computed yet (no rows, null column).
    A dbt test (tests/dbt/assert_tag_registry_matches_catalog.sql) keeps this list and the
    catalog in step.

    landing_tables(): every raw table, its base model (all versions), its staging model, its key
    and the model that publishes its kept rows; the quarantine and the reconciliation are
    generated from it.
#}
{% macro account_tags() %}
    {{ return([
        {'code': 'industry', 'model': 'tag_industry', 'multi_valued': false},
        {'code': 'company_size', 'model': 'tag_company_size', 'multi_valued': false},
        {'code': 'region', 'model': 'tag_region', 'multi_valued': false},
        {'code': 'purchase_frequency', 'model': 'tag_purchase_frequency', 'multi_valued': false},
        {'code': 'recency', 'model': 'tag_recency', 'multi_valued': false},
        {'code': 'product_preference', 'model': 'tag_product_preference', 'multi_valued': false},
        {'code': 'customer_grade', 'model': 'tag_customer_grade', 'multi_valued': false},
        {'code': 'ltv', 'model': 'tag_ltv', 'multi_valued': false},
        {'code': 'profit_contribution', 'model': 'tag_profit_contribution', 'multi_valued': false},
        {'code': 'price_sensitivity', 'model': 'tag_price_sensitivity', 'multi_valued': false},
        {'code': 'service_preference', 'model': 'tag_service_preference', 'multi_valued': false},
        {'code': 'lifecycle_stage', 'model': 'tag_lifecycle_stage', 'multi_valued': false},
        {'code': 'browsing_interest', 'model': 'tag_browsing_interest', 'multi_valued': true},
        {'code': 'purchase_intent', 'model': 'tag_purchase_intent', 'multi_valued': true},
        {'code': 'campaign_engagement', 'model': 'tag_campaign_engagement', 'multi_valued': false},
        {'code': 'satisfaction', 'model': 'tag_satisfaction', 'multi_valued': false},
        {'code': 'complaint_risk', 'model': 'tag_complaint_risk', 'multi_valued': false},
        {'code': 'manual', 'model': 'tag_manual', 'multi_valued': true},
    ]) }}
{% endmacro %}

{% macro contact_tags() %}
    {{ return([
        {'code': 'decision_role', 'model': 'tag_decision_role', 'multi_valued': false},
    ]) }}
{% endmacro %}

{% macro landing_tables() %}
    {{ return([
        {'table': 'crm/accounts', 'base': 'base_crm__accounts', 'staging': 'stg_crm__accounts', 'key': 'account_id', 'published': 'dim_customers'},
        {'table': 'crm/contacts', 'base': 'base_crm__contacts', 'staging': 'stg_crm__contacts', 'key': 'contact_id', 'published': 'dim_contacts'},
        {'table': 'crm/manual_tags', 'base': 'base_crm__manual_tags', 'staging': 'stg_crm__manual_tags', 'key': "account_id || '|' || tag_code", 'published': 'fct_manual_tag_actions'},
        {'table': 'orders/orders', 'base': 'base_orders__orders', 'staging': 'stg_orders__orders', 'key': 'order_id', 'published': 'fct_orders'},
        {'table': 'orders/order_items', 'base': 'base_orders__order_items', 'staging': 'stg_orders__order_items', 'key': "order_id || '#' || cast(line_no as varchar)", 'published': 'fct_order_lines'},
        {'table': 'orders/products', 'base': 'base_orders__products', 'staging': 'stg_orders__products', 'key': 'product_id', 'published': 'dim_products'},
        {'table': 'orders/promotions', 'base': 'base_orders__promotions', 'staging': 'stg_orders__promotions', 'key': 'promotion_id', 'published': none},
        {'table': 'support/tickets', 'base': 'base_support__tickets', 'staging': 'stg_support__tickets', 'key': 'ticket_id', 'published': 'fct_tickets'},
        {'table': 'campaigns/campaigns', 'base': 'base_campaigns__campaigns', 'staging': 'stg_campaigns__campaigns', 'key': 'campaign_id', 'published': none},
        {'table': 'campaigns/campaign_events', 'base': 'base_campaigns__campaign_events', 'staging': 'stg_campaigns__campaign_events', 'key': 'event_id', 'published': 'fct_campaign_events'},
        {'table': 'campaigns/web_events', 'base': 'base_campaigns__web_events', 'staging': 'stg_campaigns__web_events', 'key': 'event_id', 'published': 'fct_web_events'},
        {'table': 'campaigns/attributed_orders', 'base': 'base_campaigns__attributed_orders', 'staging': 'stg_campaigns__attributed_orders', 'key': "order_id || '#' || campaign_id", 'published': none},
    ]) }}
{% endmacro %}
