-- Seed for the jsonb-normalize example: a game's `users.data` jsonb column
-- has grown to hold each player's stats and achievements. Loaded by
-- `snapguard rehearse --dump seed.sql` as a plain SQL dump.
--
-- 8,000 players. Most have stats and a few achievements; the real data also
-- has what years of releases leave behind:
--   * 32 players who never played: no `stats`, no `achievements` key,
--   * 24 with `"achievements": null` (an old client wrote null for none),
--   * 82 with an achievement awarded twice (a bug fixed in 2025): the
--     same name with two different `earned_at`.

CREATE TABLE users (
    id bigint PRIMARY KEY,
    email text NOT NULL UNIQUE,
    data jsonb NOT NULL DEFAULT '{}'
);

INSERT INTO users (id, email, data)
SELECT i,
       'player' || i || '@example.com',
       CASE
           WHEN i % 250 = 0 THEN jsonb_build_object('theme', 'dark')
           ELSE jsonb_build_object(
               'theme', CASE WHEN i % 3 = 0 THEN 'dark' ELSE 'light' END,
               'stats', jsonb_build_object(
                   'games', (i * 7) % 500,
                   'wins', (i * 3) % 200,
                   'last_played', (date '2026-01-01' + (i % 300))::text),
               'achievements', CASE
                   WHEN i % 333 = 0 THEN 'null'::jsonb
                   ELSE (
                       SELECT coalesce(jsonb_agg(jsonb_build_object(
                                  'name', (ARRAY['first_win', 'ten_wins', 'marathon', 'collector', 'speedrun'])[1 + k],
                                  'earned_at', timestamptz '2025-01-01 00:00:00+00' + make_interval(hours => i + k * 500))
                                  ORDER BY k), '[]'::jsonb)
                       FROM generate_series(0, i % 5) AS k)
                   END)
       END
FROM generate_series(1, 8000) AS i;

-- The double award: `first_win` again, a month after the first one.
UPDATE users
SET data = jsonb_set(data, '{achievements}', data -> 'achievements' || jsonb_build_array(jsonb_build_object(
        'name', 'first_win',
        'earned_at', timestamptz '2025-01-01 00:00:00+00' + make_interval(hours => id::int + 720))))
WHERE id % 97 = 0 AND jsonb_typeof(data -> 'achievements') = 'array';

ANALYZE;
