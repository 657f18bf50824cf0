-- migrate:up
-- The fix for release v2: move the refunds booked as negative orders into
-- `refunds` before the constraint is added. Copy this file into
-- db/migrations/ (its version sorts between the two migrations there).
INSERT INTO refunds (id, user_id, amount_cents, created_at)
SELECT id, user_id, -total_cents, created_at
FROM orders
WHERE total_cents < 0;

DELETE FROM orders WHERE total_cents < 0;

-- migrate:down
INSERT INTO orders (id, user_id, total_cents, created_at)
SELECT id, user_id, -amount_cents, created_at FROM refunds;
DELETE FROM refunds;
