"""Dagster code location of the customer-tag warehouse (`orchestration.definitions:defs`).

Every tag runs on the refresh cadence of its catalog entry (seeds/tag_definitions.csv):
see docs/orchestration.md.
"""
