-- Per raw table: rows in = kept + rejected + superseded, and every kept row is published.
select * from {{ ref('reconciliation') }} where not is_balanced
