-- Copy every player's stats and achievements into the new tables.
INSERT INTO user_stats (user_id, games, wins, last_played)
SELECT id,
       (data -> 'stats' ->> 'games')::integer,
       (data -> 'stats' ->> 'wins')::integer,
       (data -> 'stats' ->> 'last_played')::date
FROM users
WHERE data ? 'stats';

-- `"achievements": null` means none. An achievement awarded twice keeps
-- its first award: that is when the player earned it.
INSERT INTO user_achievements (user_id, name, earned_at)
SELECT DISTINCT ON (u.id, a ->> 'name') u.id, a ->> 'name', (a ->> 'earned_at')::timestamptz
FROM users AS u,
     jsonb_array_elements(CASE jsonb_typeof(u.data -> 'achievements')
                          WHEN 'array' THEN u.data -> 'achievements'
                          ELSE '[]' END) AS a
ORDER BY u.id, a ->> 'name', (a ->> 'earned_at')::timestamptz;
