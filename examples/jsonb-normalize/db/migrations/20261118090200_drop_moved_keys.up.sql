-- The blob no longer carries what the tables now hold.
UPDATE users
SET data = data - 'stats' - 'achievements'
WHERE data ?| ARRAY['stats', 'achievements'];
