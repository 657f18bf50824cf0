-- migrate:up
-- Release v2: orders get a status, and refunds get a table of their own.
ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'placed';

CREATE TABLE refunds (
    id bigint PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    amount_cents integer NOT NULL CHECK (amount_cents > 0),
    created_at timestamptz NOT NULL
);

-- migrate:down
DROP TABLE refunds;
ALTER TABLE orders DROP COLUMN status;
