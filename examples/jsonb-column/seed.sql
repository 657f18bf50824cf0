-- Seed for the jsonb-column example: what the production database looks like
-- before the deploy. Loaded by `snapguard rehearse --dump seed.sql` as a plain
-- SQL dump, so it is written like one (no CREATE DATABASE, no \connect).
--
-- Two tables keep JSON in `text` columns. Most rows are well-formed, but the
-- real data has the rows that break `USING payload::jsonb`:
--   * empty strings (the app wrote '' for "no settings"),
--   * `\u0000` escapes (a client sent NUL bytes; PostgreSQL's jsonb refuses them).

CREATE TABLE accounts (
    id bigint PRIMARY KEY,
    email text NOT NULL UNIQUE,
    settings text NOT NULL DEFAULT ''
);

CREATE TABLE events (
    id bigint PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts (id),
    kind text NOT NULL,
    payload text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX events_account_id ON events (account_id);

INSERT INTO accounts (id, email, settings)
SELECT i,
       'user' || i || '@example.com',
       CASE
           WHEN i % 50 = 0 THEN ''                                              -- 2%: empty
           WHEN i % 333 = 0 THEN '{"theme": "dark", "signature": "Bob\u0000"}'  -- NUL escape
           ELSE json_build_object('theme', CASE WHEN i % 3 = 0 THEN 'dark' ELSE 'light' END,
                                  'newsletter', i % 4 = 0)::text
       END
FROM generate_series(1, 5000) AS i;

INSERT INTO events (id, account_id, kind, payload, created_at)
SELECT i,
       1 + (i * 7919) % 5000,
       (ARRAY['login', 'purchase', 'refund', 'page_view'])[1 + i % 4],
       CASE
           WHEN i % 97 = 0 THEN ''                                                -- empty
           WHEN i % 1009 = 0 THEN '{"path": "/search", "q": "caf\u0000e"}'        -- NUL escape
           ELSE json_build_object('path', '/p/' || (i % 800),
                                  'ms', (i * 31) % 2000,
                                  'amount', CASE WHEN i % 4 = 1 THEN round((i % 500) * 1.25, 2) END)::text
       END,
       timestamptz '2026-01-01 00:00:00+00' + make_interval(secs => i * 17)
FROM generate_series(1, 60000) AS i;

ANALYZE;
