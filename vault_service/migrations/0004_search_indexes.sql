-- Keyword search (`POST /search/secrets`: substrings of the name) without reading every
-- name: a trigram index on the lowercased name answers `lower(name) LIKE '%keyword%'`
-- (store.search) from the index for keywords of three characters or more. pg_trgm ships
-- with PostgreSQL's contrib (every packaged server has it) and is a trusted extension, so the
-- database's owner may create it. Where it is missing (the embedded development server) or
-- may not be created, search works the same, reading every name.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        CREATE INDEX vault_secrets_name_trigrams ON vault_secrets USING gin (lower(name) gin_trgm_ops);
    ELSE
        RAISE NOTICE 'pg_trgm is not available: keyword search reads every name';
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'pg_trgm may not be created here: keyword search reads every name';
END $$;

-- How many secrets each owner has ('' = the shared namespace), for the `count` of lists that
-- select by owner only (an admin's GET /secrets): counting a million index entries per page
-- would cost more than the page. Kept by triggers in the transaction of each insert, delete
-- or move, so a list's snapshot sees a count that agrees with its rows. Each owner's count is
-- spread over 8 slots (by backend), so concurrent creates rarely wait for each other's row.
CREATE TABLE vault_secret_counts (
    owner_id text NOT NULL,
    slot     smallint NOT NULL,
    n        bigint NOT NULL,
    PRIMARY KEY (owner_id, slot)
);

CREATE FUNCTION vault_secret_counts_add() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO vault_secret_counts AS c (owner_id, slot, n)
        SELECT owner_id, pg_backend_pid() % 8, count(*) FROM new_rows GROUP BY owner_id
        ON CONFLICT (owner_id, slot) DO UPDATE SET n = c.n + excluded.n;
    ELSE
        INSERT INTO vault_secret_counts AS c (owner_id, slot, n)
        SELECT owner_id, pg_backend_pid() % 8, -count(*) FROM old_rows GROUP BY owner_id
        ON CONFLICT (owner_id, slot) DO UPDATE SET n = c.n + excluded.n;
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION vault_secret_counts_move() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO vault_secret_counts AS c (owner_id, slot, n)
    VALUES (OLD.owner_id, pg_backend_pid() % 8, -1), (NEW.owner_id, pg_backend_pid() % 8, 1)
    ON CONFLICT (owner_id, slot) DO UPDATE SET n = c.n + excluded.n;
    RETURN NULL;
END $$;

CREATE TRIGGER vault_secrets_count_inserts AFTER INSERT ON vault_secrets
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION vault_secret_counts_add();
CREATE TRIGGER vault_secrets_count_deletes AFTER DELETE ON vault_secrets
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION vault_secret_counts_add();
-- Only a change of owner (the reserved namespace's move) fires this; every other update of a
-- secret (each write bumps its version) skips it on the WHEN alone.
CREATE TRIGGER vault_secrets_count_moves AFTER UPDATE OF owner_id ON vault_secrets
    FOR EACH ROW WHEN (OLD.owner_id IS DISTINCT FROM NEW.owner_id) EXECUTE FUNCTION vault_secret_counts_move();

INSERT INTO vault_secret_counts (owner_id, slot, n) SELECT owner_id, 0, count(*) FROM vault_secrets GROUP BY owner_id;
