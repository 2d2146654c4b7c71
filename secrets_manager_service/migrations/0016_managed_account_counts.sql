-- The managed directory accounts of an admin's account list without a filter (GET /secrets adds
-- them to the host accounts of 0015) are counted, like those, from counts kept by triggers, not
-- by joining every managed account to its scanned account and its domain for each page.
-- A managed account may be checked out when target_domains/checkout_store.USABLE says so: its own
-- row (enabled, explicit_checkout, state ACTIVE or FAILED), its scanned account (not removed)
-- and its domain (enabled). Only the first part is counted here, per domain, by triggers on the
-- managed accounts alone, from their old and new rows: a trigger that read the scanned account or
-- the domain could miss a concurrent transaction's change to them. The list then leaves out
-- disabled domains (a join of the domains) and subtracts the counted accounts whose scanned
-- account is removed (few: the partial index below finds them), all in the page's snapshot.
-- Counts are spread over 8 slots per domain (by backend), as 0015's; a deleted domain's rows stay
-- at 0 and no list joins them.
CREATE TABLE sm_td_checkout_counts (
    domain_id uuid NOT NULL,
    slot      smallint NOT NULL,
    n         bigint NOT NULL,
    PRIMARY KEY (domain_id, slot)
);

CREATE FUNCTION sm_td_checkout_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- (each branch names only the transition tables its event has)
    IF TG_OP = 'INSERT' THEN
        INSERT INTO sm_td_checkout_counts AS c (domain_id, slot, n)
        SELECT domain_id, pg_backend_pid() % 8, count(*) FROM new_rows
         WHERE enabled AND explicit_checkout AND state IN ('ACTIVE', 'FAILED') GROUP BY domain_id
        ON CONFLICT (domain_id, slot) DO UPDATE SET n = c.n + excluded.n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO sm_td_checkout_counts AS c (domain_id, slot, n)
        SELECT domain_id, pg_backend_pid() % 8, -count(*) FROM old_rows
         WHERE enabled AND explicit_checkout AND state IN ('ACTIVE', 'FAILED') GROUP BY domain_id
        ON CONFLICT (domain_id, slot) DO UPDATE SET n = c.n + excluded.n;
    ELSE
        INSERT INTO sm_td_checkout_counts AS c (domain_id, slot, n)
        SELECT domain_id, pg_backend_pid() % 8, sum(n) FROM (
            SELECT domain_id, 1 AS n FROM new_rows WHERE enabled AND explicit_checkout AND state IN ('ACTIVE', 'FAILED')
            UNION ALL
            SELECT domain_id, -1 FROM old_rows WHERE enabled AND explicit_checkout AND state IN ('ACTIVE', 'FAILED')
        ) changed GROUP BY domain_id HAVING sum(n) <> 0
        ON CONFLICT (domain_id, slot) DO UPDATE SET n = c.n + excluded.n;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION sm_td_checkout_counts_clear() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM sm_td_checkout_counts;
    RETURN NULL;
END $$;

CREATE TRIGGER sm_td_managed_accounts_count_inserts AFTER INSERT ON sm_td_managed_accounts
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sm_td_checkout_counts_add();
CREATE TRIGGER sm_td_managed_accounts_count_deletes AFTER DELETE ON sm_td_managed_accounts
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION sm_td_checkout_counts_add();
-- (a column list would skip updates of other columns, but may not come with transition tables)
CREATE TRIGGER sm_td_managed_accounts_count_updates AFTER UPDATE ON sm_td_managed_accounts
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION sm_td_checkout_counts_add();
CREATE TRIGGER sm_td_managed_accounts_count_truncates AFTER TRUNCATE ON sm_td_managed_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION sm_td_checkout_counts_clear();

CREATE INDEX sm_td_accounts_removed ON sm_td_accounts (id) WHERE removed;

-- The managed accounts already there (the triggers' lock holds back changes until this commits).
INSERT INTO sm_td_checkout_counts (domain_id, slot, n)
SELECT domain_id, 0, count(*) FROM sm_td_managed_accounts
 WHERE enabled AND explicit_checkout AND state IN ('ACTIVE', 'FAILED') GROUP BY domain_id;
