-- Not reversible from the tables alone: restore the snapshot instead.
SELECT 1;
