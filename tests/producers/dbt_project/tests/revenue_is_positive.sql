-- Fails (returns rows) when dbt is run with --vars '{expect_big_spenders: true}': the producers suite uses it
-- to make `dbt-ol build` end with a failing test.
select *
from {{ ref('customer_revenue') }}
where revenue <= {{ 100 if var('expect_big_spenders', false) else 0 }}
