TRUNCATE user_achievements, user_stats;
