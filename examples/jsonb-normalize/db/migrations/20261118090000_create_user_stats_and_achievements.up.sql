-- Per-player stats and achievements move out of the growing `users.data`
-- blob into tables of their own.
CREATE TABLE user_stats (
    user_id bigint PRIMARY KEY REFERENCES users (id),
    games integer NOT NULL,
    wins integer NOT NULL,
    last_played date
);

CREATE TABLE user_achievements (
    user_id bigint NOT NULL REFERENCES users (id),
    name text NOT NULL,
    earned_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, name)
);
