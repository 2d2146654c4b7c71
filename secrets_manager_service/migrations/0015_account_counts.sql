-- How many host accounts there are, for the `count` of an admin's account list without a filter
-- (GET /secrets): counting 100,000 accounts for every page (an index-only scan, 13 ms) cost
-- more than the page. Kept by statement triggers in the transaction of each insert, delete
-- (a host's removal deletes its accounts by cascade, which fires them too) or truncate, so a
-- list's snapshot sees a count that agrees with its rows. The count is spread over 8 slots (by
-- backend), so concurrent creates rarely wait for each other's row; a statement that inserts
-- or deletes nothing writes no slot.
CREATE TABLE sm_account_counts (
    slot smallint PRIMARY KEY,
    n    bigint NOT NULL
);

CREATE FUNCTION sm_account_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO sm_account_counts AS c (slot, n)
        SELECT pg_backend_pid() % 8, count(*) FROM new_rows HAVING count(*) > 0
        ON CONFLICT (slot) DO UPDATE SET n = c.n + excluded.n;
    ELSE
        INSERT INTO sm_account_counts AS c (slot, n)
        SELECT pg_backend_pid() % 8, -count(*) FROM old_rows HAVING count(*) > 0
        ON CONFLICT (slot) DO UPDATE SET n = c.n + excluded.n;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION sm_account_counts_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sm_account_counts;
    RETURN NULL;
END $$;

CREATE TRIGGER sm_accounts_count_inserts AFTER INSERT ON sm_accounts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sm_account_counts_add();
CREATE TRIGGER sm_accounts_count_deletes AFTER DELETE ON sm_accounts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION sm_account_counts_add();
CREATE TRIGGER sm_accounts_count_truncates AFTER TRUNCATE ON sm_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION sm_account_counts_clear();

-- The accounts already there: counted after the triggers exist, whose lock on sm_accounts
-- (until this migration commits) holds back any insert or delete that the count would miss.
INSERT INTO sm_account_counts (slot, n) SELECT 0, count(*) FROM sm_accounts HAVING count(*) > 0;
