-- Per-customer summary the LTV model (BG/NBD x Gamma-Gamma, tag_ltv) is fitted on, as of the
-- run date; the columns and their rules: macros/ltv_summary.sql. Only customers with at least
-- one purchase appear (never purchased = no row, no ltv tag).
{{ ltv_customer_summary(as_of_date()) }}
