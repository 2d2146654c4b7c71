-- Account listing and search at 100,000 accounts. A keyword matches anywhere in an account's
-- `host_id/account address` (account_secrets.store.list_accounts); that text spans two tables,
-- so no index could serve it. It is kept on the account as `search_text` (lowercased), by a
-- trigger on the account's insert and on its host's change of address, and indexed by
-- trigrams where pg_trgm is available (as the Vault's migration 0004 does for names).
ALTER TABLE sm_accounts ADD COLUMN search_text text;

CREATE FUNCTION sm_account_search_text(host uuid, account text, address text) RETURNS text
LANGUAGE sql IMMUTABLE AS $$ SELECT lower(host::text || '/' || account || ' ' || address) $$;

CREATE FUNCTION sm_accounts_fill_search_text() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.search_text := sm_account_search_text(NEW.host_id, NEW.account,
                                              (SELECT h.address FROM sm_hosts h WHERE h.id = NEW.host_id));
    RETURN NEW;
END $$;
CREATE TRIGGER sm_accounts_search_text BEFORE INSERT OR UPDATE OF host_id, account ON sm_accounts
    FOR EACH ROW EXECUTE FUNCTION sm_accounts_fill_search_text();

CREATE FUNCTION sm_hosts_refresh_search_text() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sm_accounts SET search_text = sm_account_search_text(host_id, account, NEW.address) WHERE host_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER sm_hosts_search_text AFTER UPDATE OF address ON sm_hosts
    FOR EACH ROW WHEN (OLD.address IS DISTINCT FROM NEW.address) EXECUTE FUNCTION sm_hosts_refresh_search_text();

UPDATE sm_accounts a SET search_text = sm_account_search_text(a.host_id, a.account, h.address)
  FROM sm_hosts h WHERE h.id = a.host_id;
ALTER TABLE sm_accounts ALTER COLUMN search_text SET NOT NULL;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm') THEN
        CREATE EXTENSION IF NOT EXISTS pg_trgm;
        CREATE INDEX sm_accounts_search_trigrams ON sm_accounts USING gin (search_text gin_trgm_ops);
    ELSE
        RAISE NOTICE 'pg_trgm is not available: account search reads every account';
    END IF;
EXCEPTION WHEN insufficient_privilege THEN
    RAISE NOTICE 'pg_trgm may not be created here: account search reads every account';
END $$;
