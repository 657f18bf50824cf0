-- Seed for the rails-release example: a shop's database as release v1 left
-- it. Loaded by `snapguard rehearse --dump seed.sql` as a plain SQL dump,
-- or with `psql -f seed.sql` into a local "production" database.
--
-- 5,000 users and 40,000 orders. An old admin tool booked refunds as
-- orders with a negative total: 57 of them are still there, and they break
-- release v2's CHECK constraint.

CREATE TABLE users (
    id bigint PRIMARY KEY,
    email text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL
);

CREATE TABLE orders (
    id bigint PRIMARY KEY,
    user_id bigint NOT NULL REFERENCES users (id),
    total_cents integer NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX orders_user_id ON orders (user_id);

INSERT INTO users (id, email, created_at)
SELECT i, 'customer' || i || '@example.com',
       timestamptz '2024-01-01 00:00:00+00' + make_interval(hours => i)
FROM generate_series(1, 5000) AS i;

INSERT INTO orders (id, user_id, total_cents, created_at)
SELECT i,
       1 + (i * 7919) % 5000,
       CASE WHEN i % 700 = 0 THEN -((i % 90) + 10) * 100   -- a refund, booked as an order
            ELSE 500 + (i * 37) % 25000 END,
       timestamptz '2025-01-01 00:00:00+00' + make_interval(mins => i * 13)
FROM generate_series(1, 40000) AS i;

ANALYZE;
