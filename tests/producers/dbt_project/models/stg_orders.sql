select
    id as order_id,
    customer_id,
    amount_cents / 100.0 as amount
from {{ ref('raw_orders') }}
where status = 'shipped'
