-- Seed for the jsonb-gin-index example: a product catalogue whose
-- attributes live in a `metadata` jsonb column with no schema of their own.
-- Loaded by `snapguard rehearse --dump seed.sql` as a plain SQL dump.
--
-- 200,000 products. Most carry tags, a colour and a weight; the real data
-- also has what a JSON column collects over the years:
--   * 2,000 products with empty metadata (`{}`) from an old import,
--   * 1,000 with `tags` as a comma-separated string instead of an array,
--   * 197 colours spelled in capitals by one supplier's feed ("Red").

CREATE TABLE products (
    id bigint PRIMARY KEY,
    sku text NOT NULL UNIQUE,
    price_cents integer NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}'
);

INSERT INTO products (id, sku, price_cents, metadata)
SELECT i,
       'SKU-' || lpad(i::text, 6, '0'),
       100 + (i * 37) % 20000,
       CASE
           WHEN i % 100 = 0 THEN '{}'::jsonb
           WHEN i % 200 = 1 THEN jsonb_build_object('tags', 'sale,outdoor', 'color', 'green')
           ELSE jsonb_build_object(
               'tags', (ARRAY['["sale"]', '["new", "outdoor"]', '["kitchen"]', '["outdoor", "garden"]', '[]'])[1 + i % 5]::jsonb,
               'color', CASE WHEN i % 997 = 0 THEN 'Red'
                             ELSE (ARRAY['red', 'blue', 'green', 'black'])[1 + i % 4] END,
               'weight_g', 50 + (i * 13) % 5000)
       END
FROM generate_series(1, 200000) AS i;

ANALYZE;
