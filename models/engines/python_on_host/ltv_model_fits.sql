-- On engines without dbt Python models (PostgreSQL): what models/marts/ltv/ltv_model_fits.py computed for this run,
-- run on the crm-tags host (src/crm_tags/python_on_host.py) into python_models.ltv_model_fits.
-- Its inputs, as the Python model's, so the graph is the same on every engine:
-- depends_on: {{ ref('tag_thresholds') }}
-- depends_on: {{ ref('int_ltv_run') }}
-- depends_on: {{ ref('int_customers_ltv_summary') }}
{{ config(materialized='view', schema='marts') }}

select * from {{ source('python_models', 'ltv_model_fits') }}
