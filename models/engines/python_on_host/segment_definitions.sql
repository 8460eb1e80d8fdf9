-- On engines without dbt Python models (PostgreSQL): what models/marts/segments/segment_definitions.py computed for this run,
-- run on the crm-tags host (src/crm_tags/python_on_host.py) into python_models.segment_definitions.
-- Its inputs, as the Python model's, so the graph is the same on every engine:
-- depends_on: {{ ref('tag_definitions') }}
-- depends_on: {{ ref('tag_value_definitions') }}
-- depends_on: {{ ref('category_mapping') }}
-- depends_on: {{ ref('category_labels') }}
{{ config(materialized='view', schema='intermediate') }}

select * from {{ source('python_models', 'segment_definitions') }}
