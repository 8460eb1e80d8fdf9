"""Dagster code location of the customer-tag warehouse (`orchestration.definitions:defs`).

Every tag runs on the refresh cadence of its catalog entry (vars.tag_catalog in dbt_project.yml,
read through crm_tags.catalog.read_catalog): see docs/orchestration.md.
"""
