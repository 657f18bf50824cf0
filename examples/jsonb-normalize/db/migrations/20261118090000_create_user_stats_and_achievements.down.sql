DROP TABLE user_achievements;
DROP TABLE user_stats;
