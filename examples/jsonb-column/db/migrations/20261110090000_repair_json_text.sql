-- Data migration: make every stored value valid for jsonb before the type
-- change. Empty strings become an empty object; `\u0000` escapes (which jsonb
-- refuses) are dropped. The before-check `payloads_look_like_json` makes sure
-- nothing else is broken, so this covers every bad row.
UPDATE accounts SET settings = '{}' WHERE settings = '';
UPDATE accounts SET settings = replace(settings, '\u0000', '') WHERE strpos(settings, '\u0000') > 0;
UPDATE events SET payload = '{}' WHERE payload = '';
UPDATE events SET payload = replace(payload, '\u0000', '') WHERE strpos(payload, '\u0000') > 0;
